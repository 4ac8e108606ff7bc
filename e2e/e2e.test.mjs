// End-to-end tests of the web pages: the real registry binary, Debian's
// headless Chromium driven by playwright-core. Screenshots of each page go
// to e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'allowlist');
const artifacts = join(root, 'e2e', 'artifacts');
mkdirSync(artifacts, { recursive: true });

let registry, base, browser, db;

function token(dept) {
  const out = execFileSync(bin, ['token', 'create', '--db', db, '--role', 'owner', '--department', dept, '--name', `${dept}-e2e`]);
  return out.toString().trim().split('\n').pop();
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'allowlist-e2e-'));
  db = join(dir, 'registry.db');
  registry = spawn(bin, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--seed', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise((resolve, reject) => {
    let out = '';
    registry.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/registry listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    registry.on('exit', (code) => reject(new Error(`registry exited ${code}`)));
    setTimeout(() => reject(new Error('registry did not start')), 20000);
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  registry?.kill('SIGTERM');
});

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage });
}

async function commonVersion(page) {
  await page.goto(`${base}/lists`);
  return Number(await page.locator('[data-scope-version="common"]').innerText());
}

test('staff check a tool, request one; owners propose and approve it; the list moves', async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });

  // Staff: a tool by name.
  await page.goto(`${base}/`);
  assert.equal(await page.locator('h1').innerText(), 'Can I use this tool at work?');
  await shot(page, 'start');
  await page.getByLabel('Name or web address of the tool').fill('Zoom');
  await page.getByRole('button', { name: 'Check' }).click();
  assert.match(await page.locator('h1').innerText(), /Yes, you can use Zoom/);
  assert.match(await page.locator('main').innerText(), /\*\.zoom\.us/);
  await shot(page, 'check-allowed');

  // Staff: an unlisted tool, then a request for it.
  await page.goto(`${base}/`);
  await page.getByLabel('Name or web address of the tool').fill('https://meet.jit.si/team-call');
  await page.getByLabel('Your organisation').selectOption('dsit');
  await page.getByRole('button', { name: 'Check' }).click();
  assert.match(await page.locator('h1').innerText(), /No, .* is not on the list for .* yet/);
  await shot(page, 'check-not-allowed');
  await page.getByLabel('Tool').fill('Jitsi Meet');
  await page.getByLabel('Why do you need it?').fill('Calls with colleagues in other departments');
  await page.getByRole('button', { name: 'Send request' }).click();
  assert.match(await page.locator('h1').innerText(), /Request sent/);
  await shot(page, 'request-sent');

  const before = await commonVersion(page);

  // Owner of DSIT: sees the request, proposes the site and approves it.
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Token').fill(token('dsit'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match(await page.locator('h1').innerText(), /Sites waiting for your decision/);
  await shot(page, 'owner-queue', false);
  await page.getByRole('link', { name: /1 request from staff/ }).click();
  assert.match(await page.locator('main').innerText(), /Calls with colleagues in other departments/);
  await shot(page, 'owner-requests');
  await page.getByRole('link', { name: 'Propose a site' }).click();
  await page.getByLabel('Name of the tool').fill('Jitsi Meet');
  await page.getByLabel('Short identifier').fill('jitsi-meet');
  await page.getByLabel('Category').selectOption('video-conferencing');
  await page.getByLabel('Web addresses it needs').fill('meet.jit.si');
  await page.getByLabel('Who runs the tool').fill('8x8 Jitsi team');
  await shot(page, 'propose');
  await page.getByRole('button', { name: /Propose and approve/ }).click();
  assert.match(await page.locator('.govuk-notification-banner').innerText(), /You proposed Jitsi Meet/);
  assert.equal(await commonVersion(page), before, 'one approval is not a quorum');
  await page.goto(`${base}/owner`);
  await page.getByRole('button', { name: 'Sign out' }).click();

  // Owner of HMRC: approves from the queue, reaching quorum.
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Token').fill(token('hmrc'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The newest proposal waits least, so it is on the queue's last page.
  const pages = page.getByRole('navigation', { name: 'Pages of sites awaiting your decision' }).getByRole('link');
  if (await pages.count()) await pages.last().click();
  await page.getByRole('button', { name: 'Approve Jitsi Meet' }).click();
  assert.match(await page.locator('.govuk-notification-banner').innerText(), /approved Jitsi Meet for HM Revenue .* on the common list/);

  // The common list moved, and staff now get a yes.
  assert.equal(await commonVersion(page), before + 1);
  await shot(page, 'lists');
  await page.goto(`${base}/check?q=meet.jit.si`);
  assert.match(await page.locator('h1').innerText(), /Yes, you can use Jitsi Meet/);

  for (const p of ['catalogue', 'dashboard', 'lists/common']) {
    await page.goto(`${base}/${p}`);
    assert.equal(await page.locator('.govuk-error-summary').count(), 0);
    await shot(page, p.replace('/', '-'));
  }
  await page.close();
});

test('forms without a CSRF token are refused', async () => {
  const res = await fetch(`${base}/request`, { method: 'POST', body: new URLSearchParams({ tool: 'x', reason: 'y', department: 'dsit' }) });
  assert.equal(res.status, 403);
});

test('errors are summarised and linked to their fields', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/check?q=`);
  assert.match(await page.locator('.govuk-error-summary').innerText(), /Enter the name or web address of the tool/);
  assert.equal(await page.locator('.govuk-error-summary a').getAttribute('href'), '#q');
  await page.close();
});
