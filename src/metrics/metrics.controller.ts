import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { MetricsService } from './metrics.service';

@ApiTags('telemetry')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({ summary: 'Prometheus text exposition: transactions, decisions, latencies, in-doubt transactions, votes' })
  @ApiProduces('text/plain')
  async scrape(@Res() response: Response): Promise<void> {
    const body = await this.metrics.render();
    // Written as is: Express's send() would reorder the content type's parameters, and
    // Prometheus picks its parser by this header (text format 0.0.4).
    response.status(200).setHeader('content-type', this.metrics.contentType());
    response.end(body);
  }
}
