import { Module } from '@nestjs/common';
import { ParticipantRegistry } from './participant-registry.service';

@Module({ providers: [ParticipantRegistry], exports: [ParticipantRegistry] })
export class RegistryModule {}
