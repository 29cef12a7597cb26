import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { renderOpsPage } from './ops-page.html';

/** Serves the ops page; the page itself calls the JSON endpoints documented in OpenAPI. */
@ApiExcludeController()
@Controller('ops')
export class OpsPageController {
  private readonly html: string;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.html = renderOpsPage(config.traceUiUrl);
  }

  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-store')
  page(): string {
    return this.html;
  }
}
