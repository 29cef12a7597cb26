import { Module } from '@nestjs/common';
import { AnnouncementConsumer } from './announcement-consumer';
import { ParticipantRegistry } from './participant-registry.service';

@Module({ providers: [ParticipantRegistry, AnnouncementConsumer], exports: [ParticipantRegistry] })
export class RegistryModule {}
