/**
 * The ops page in headless Chromium (Debian's chromium driven by playwright-core) against a
 * real coordinator: it fills its tables from the JSON endpoints, links each transaction to
 * its timeline and its trace, and its Abort button goes through the audited operator action.
 * The screenshot lands in .local/screenshots/ops-page.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchedChromium, launchChromium } from '../support/chromium';
import { Cluster } from '../support/cluster';
import { FakeParticipant } from '../support/fake-participant';
import { waitUntil } from '../support/processes';

const TRACE_UI_URL = 'http://jaeger.example:16686';
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SCREENSHOTS = join(__dirname, '..', '..', '.local', 'screenshots');

const cluster = new Cluster({ services: [], coordinatorEnv: { TRACE_UI_URL } });
let alpha: FakeParticipant;
let beta: FakeParticipant;
let browser: LaunchedChromium;
let page: Page;
const ids = { committed: '', aborted: '', unfinished: '' };

async function create(participants: string[], headers: Record<string, string> = {}, timeoutMs?: number): Promise<string> {
  const { status, body } = await cluster.api('POST', '/v1/transactions', { protocol: '2pc', participants: participants.map((name) => ({ name })), timeoutMs }, headers);
  expect(status).toBe(201);
  return body.id;
}

const transaction = async (id: string) => (await cluster.api('GET', `/v1/transactions/${id}`)).body;

beforeAll(async () => {
  // Fails with the install command before any process starts when Chromium is missing.
  browser = await launchChromium();
  await cluster.start();
  alpha = new FakeParticipant('alpha', cluster.prefix, { autoAck: true });
  beta = new FakeParticipant('beta', cluster.prefix, { autoAck: true });
  await Promise.all([alpha.start(), beta.start()]);
  await cluster.waitForLive('alpha');
  await cluster.waitForLive('beta');

  ids.committed = await create(['alpha', 'beta'], { traceparent: `00-${TRACE_ID}-b7ad6b7169203331-01` });
  await alpha.vote(ids.committed, 'YES');
  await beta.vote(ids.committed, 'YES');
  ids.aborted = await create(['alpha', 'beta']);
  await alpha.vote(ids.aborted, 'NO', 'out of stock');
  // beta never votes on this one, so it stays undecided until the operator acts.
  ids.unfinished = await create(['alpha', 'beta'], {}, 120_000);
  await alpha.vote(ids.unfinished, 'YES');
  await waitUntil('the commit and the abort to complete', async () => (await transaction(ids.committed)).completed && (await transaction(ids.aborted)).completed);
  await waitUntil('the vote on the open transaction', async () => (await transaction(ids.unfinished)).participants[0].vote === 'YES');
  page = await browser.context.newPage();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all([alpha?.stop(), beta?.stop()]);
  await cluster?.stop();
});

const row = (table: string, id: string) => page.locator(`#${table} tbody tr[data-txn-id="${id}"]`);

describe('ops page', () => {
  it('shows outcome counts, recent and unfinished transactions with timeline and trace links', async () => {
    const response = await page.goto(`${cluster.baseUrl}/ops`);
    expect(response?.headers()['content-type']).toMatch(/^text\/html/);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });

    const outcomes = page.locator('#outcomes tbody tr[data-protocol="2pc"]');
    expect(await outcomes.locator('td[data-state="COMMITTED"]').textContent()).toBe('1');
    expect(await outcomes.locator('td[data-state="ABORTED"]').textContent()).toBe('1');
    expect(await outcomes.locator('td[data-state="PREPARING"]').textContent()).toBe('1');
    expect(await outcomes.locator('td.unfinished-count').textContent()).toBe('1');

    expect(await page.locator('#recent tbody tr').count()).toBe(3);
    const committed = row('recent', ids.committed);
    expect(await committed.locator('td.COMMITTED').textContent()).toBe('COMMITTED');
    expect(await committed.locator('a.timeline').getAttribute('href')).toBe(`/v1/transactions/${ids.committed}/timeline`);
    expect(await committed.locator('a.trace').getAttribute('href')).toBe(`${TRACE_UI_URL}/trace/${TRACE_ID}`);
    expect(await row('recent', ids.aborted).locator('td.reason').textContent()).toBe('alpha voted no: out of stock');

    expect(await page.locator('#unfinished tbody tr').count()).toBe(1);
    const open = row('unfinished', ids.unfinished);
    expect(await open.locator('td.PREPARING').textContent()).toBe('PREPARING');
    expect(await open.locator('td.age').textContent()).toMatch(/^\d+(\.\d)? (ms|s|min)$/);
    expect(await open.locator('button.abort').count()).toBe(1);

    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'ops-page.png'), fullPage: true });
  });

  it('aborts an unfinished transaction from its row, as ops-page, with the reason typed in the prompt', async () => {
    page.once('dialog', (dialog) => void dialog.accept('stuck, from the page'));
    await row('unfinished', ids.unfinished).locator('button.abort').click();
    await page.locator('#status', { hasText: /^abort / }).waitFor({ timeout: 30_000 });
    expect(await page.locator('#status').textContent()).toMatch(/ABORT logged/);
    expect(await transaction(ids.unfinished)).toMatchObject({ state: 'ABORTED', decisionReason: 'aborted by operator ops-page: stuck, from the page' });

    await page.locator(`#recent a.timeline[href$="${ids.unfinished}/timeline"]`).click();
    const timeline = JSON.parse((await page.locator('body').textContent()) ?? '{}');
    expect(timeline).toMatchObject({ id: ids.unfinished, state: 'ABORTED' });
    expect(timeline.events.find((e: { type: string }) => e.type === 'operatorAction')).toMatchObject({ action: 'abort', by: 'ops-page', reason: 'stuck, from the page', outcome: 'aborted' });
  });
});
