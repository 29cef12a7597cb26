import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ParticipantRegistry, RegisteredParticipant } from '../registry/participant-registry.service';

@ApiTags('participants')
@Controller('v1/participants')
export class ParticipantsController {
  constructor(private readonly registry: ParticipantRegistry) {}

  @Get()
  @ApiOperation({ summary: 'Every participant that has announced itself, with its last-seen time and liveness' })
  async list(): Promise<RegisteredParticipant[]> {
    return this.registry.list();
  }
}
