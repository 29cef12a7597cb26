import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ name: 'participants' })
export class ParticipantRegistrationEntity {
  @PrimaryColumn('text') name!: string;
  @Column('text', { array: true }) protocols!: string[];
  @Column('text') topic!: string;
  @Column('text', { name: 'instance_id' }) instanceId!: string;
  @Column('timestamptz', { name: 'first_seen_at' }) firstSeenAt!: Date;
  @Column('timestamptz', { name: 'last_seen_at' }) lastSeenAt!: Date;
}
