// Every page, as each kind of user sees it, checked with axe-core in
// Debian's headless Chromium; the staff and filtering owner journeys done
// with the keyboard alone; and, with UPDATE_SCREENSHOTS=1, the README's
// screenshots taken afresh.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, ownerToken, launchChromium, expectAccessible, artifacts, bin, root } from './lib.mjs';

let registry, base, browser;

before(async () => {
  registry = await startRegistry();
  base = registry.base;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  registry?.proc.kill('SIGTERM');
});

function adminToken(db) {
  const out = execFileSync(bin, ['token', 'create', '--db', db, '--role', 'admin', '--name', 'admin-e2e']);
  return out.toString().trim().split('\n').pop();
}

async function signIn(page, token) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const totals = {};

// accessible runs axe-core on the page as it is and adds its counts to
// the totals (to) that a test reports.
async function accessible(page, label, to = totals) {
  const counts = await expectAccessible(page, label);
  for (const [impact, n] of Object.entries(counts)) to[impact] = (to[impact] || 0) + n;
  return counts;
}

async function audit(page, path) {
  const res = await page.goto(base + path);
  assert.ok(res.status() < 500, `${path}: ${res.status()}`);
  return accessible(page, path);
}

test('every page has no serious or critical accessibility violation', async () => {
  const anonymous = ['/', '/check?q=Zoom', '/check?q=games.example.com', '/check?q=', '/request', '/catalogue',
    '/catalogue?status=proposed', '/lists', '/lists/common', '/dashboard', '/sign-in', '/accessibility',
    '/common-ground', '/common-ground?departments=dsit,hmrc', '/no-such-page'];
  // A staff request to follow by its reference (governance pages).
  const sent = await fetch(`${base}/v1/requests`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ tool: 'Excalidraw', url: 'https://excalidraw.com', reason: 'Sketching', department: 'dsit' }) });
  const { reference } = await sent.json();
  anonymous.push('/requests', '/requests?reference=', `/requests/${reference}`, '/requests/req_unknown');
  // A usage report from dsit's resolver, so that the owner's page, the
  // catalogue and the dashboard show their usage sections.
  const reader = execFileSync(bin, ['token', 'create', '--db', registry.db, '--role', 'reader', '--department', 'dsit', '--name', 'resolver-e2e'])
    .toString().trim().split('\n').pop();
  const end = new Date(Math.floor(Date.now() / 1000) * 1000);
  const usage = await fetch(`${base}/v1/usage`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${reader}` },
    body: JSON.stringify({ report_id: '0123456789abcdef0123456789abcdef', department: 'dsit', scope: 'dsit', list_version: 1, mode: 'monitor',
      period_start: new Date(end - 15 * 60 * 1000).toISOString(), period_end: end.toISOString(), k: 5,
      entries: [{ pattern: '*.zoom.us', hits: 120 }], refused: [{ domain: 'excalidraw.com', queries: 150, clients: 10 }, { domain: 'example.com', queries: 40, clients: 5 }] }) });
  assert.equal(usage.status, 202, await usage.text());
  const owner = ['/owner', '/owner?status=approved', '/owner?category=video-conferencing&status=proposed', '/owner/sites/zoom', '/owner/requests', '/owner/waiting', '/owner/directory', '/owner/propose'];
  const admin = ['/admin', '/admin/audit', '/owner/directory'];
  let pages = 0;
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  for (const p of anonymous) { await audit(page, p); pages++; }
  await signIn(page, ownerToken(registry.db, 'dsit'));
  for (const p of owner) { await audit(page, p); pages++; }
  await page.goto(`${base}/owner`);
  assert.match(await page.locator('#usage').innerText(), /What staff here tried to reach this month/);
  assert.match(await page.locator('#refused').innerText(), /excalidraw\.com/);
  await page.goto(`${base}/catalogue`);
  assert.match(await page.locator('main').innerText(), /120 this month/);
  await page.goto(`${base}/dashboard`);
  assert.equal(await page.locator('svg[role=img]').count(), 3);
  // The versions chart starts at the first published version, not the empty version 0.
  const bars = await page.locator('#chart-title ~ rect title').allTextContents();
  assert.ok(bars.length > 0 && bars.every((b) => !/^version 0:/.test(b)), `chart bars: ${bars.slice(0, 3)}`);
  const ctx = await browser.newContext();
  const adminPage = await ctx.newPage();
  await signIn(adminPage, adminToken(registry.db));
  for (const p of admin) { await audit(adminPage, p); pages++; }
  console.log(`axe-core: ${pages} pages, violations by impact: ${JSON.stringify(totals)} (serious and critical: 0)`);
  await ctx.close();
  await page.close();
});

test('no page scrolls sideways on a 375 px screen', async () => {
  const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
  for (const p of ['/', '/catalogue', '/lists', '/lists/common', '/dashboard', '/common-ground?departments=dsit,hmrc', '/check?q=Zoom']) {
    await page.goto(base + p);
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= inner, `${p}: ${scroll} px wide on a ${inner} px screen`);
  }
  await page.close();
});

// tabTo presses Tab until the focused element matches, as a keyboard user
// would, and fails if it never gets there.
async function tabTo(page, describe, matches) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    const here = await page.evaluate(() => {
      const el = document.activeElement;
      return { tag: el.tagName, text: (el.innerText || el.value || '').trim(), label: el.labels?.[0]?.innerText?.trim() || el.getAttribute('aria-label') || '' };
    });
    if (matches(here)) return;
  }
  assert.fail(`could not reach ${describe} with the Tab key`);
}

test('staff and filtering owners can do their work with the keyboard alone', async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  // Staff: skip link, check a tool, ask for it.
  await page.goto(`${base}/`);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.innerText.trim()), 'Skip to main content');
  await tabTo(page, 'the tool field', (e) => e.label.startsWith('Name or web address'));
  await page.keyboard.type('games.example.com');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/check\?/);
  assert.match(await page.locator('h1').innerText(), /is not on the/);
  await tabTo(page, 'the reason field', (e) => e.label.startsWith('Why do you need it'));
  await page.keyboard.type('Workshops with another department');
  await tabTo(page, 'the organisation', (e) => e.label === 'Your organisation');
  await page.keyboard.press('ArrowDown');
  await tabTo(page, 'the send button', (e) => e.tag === 'BUTTON' && e.text === 'Send request');
  await Promise.all([page.waitForURL(/\/request$/), page.keyboard.press('Enter')]);
  assert.match(await page.locator('h1').innerText(), /Request sent/);

  // A filtering owner: sign in, open the first site awaiting a decision, approve it.
  await page.goto(`${base}/sign-in`);
  await tabTo(page, 'the token field', (e) => e.label === 'Token');
  await page.keyboard.type(ownerToken(registry.db, 'hmrc'));
  await Promise.all([page.waitForURL(/\/owner$/), page.keyboard.press('Enter')]);
  const first = await page.locator('#awaiting ~ .govuk-summary-card h3').first().innerText();
  await tabTo(page, `the approve button for ${first}`, (e) => e.tag === 'BUTTON' && e.text.startsWith('Approve'));
  await Promise.all([page.waitForResponse((r) => r.url().endsWith('/owner/decide')), page.keyboard.press('Enter')]);
  await page.waitForURL(/\/owner$/);
  assert.match(await page.locator('.govuk-notification-banner').innerText(), new RegExp(`You approved ${first}`));
  await page.close();
});

// postRequest sends a staff request through the API and returns its id
// and reference.
async function postRequest(body) {
  const res = await fetch(`${base}/v1/requests`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text);
}

async function requestStatus(reference) {
  return (await (await fetch(`${base}/v1/requests/${reference}`)).json()).status;
}

test('owners answer, decline and link staff requests; administrators manage tokens and suspensions; axe on every step', async () => {
  const padlet = await postRequest({ tool: 'Padlet', url: 'https://padlet.com', reason: 'Retrospectives', department: 'gla' });
  const games = await postRequest({ tool: 'Games portal', url: 'https://games.example.com', reason: 'Team building', department: 'gla' });
  const zoom = await postRequest({ tool: 'Zoom', url: 'https://zoom.us', reason: 'Calls with suppliers', department: 'gla' });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await ctx.newPage();
  const seen = {};
  let steps = 0;
  const step = (p, label) => { steps++; return accessible(p, label, seen); };
  await signIn(page, ownerToken(registry.db, 'gla'));
  await page.getByRole('link', { name: 'Waiting and overdue' }).click();
  await step(page, '/owner/waiting with requests');

  // A decline needs a reason the requester can read; with one, it is declined.
  // Each card's buttons name the request they act on.
  let gamesCard = page.locator(`#request-${games.id}`);
  await gamesCard.getByRole('button', { name: `Decline request ${games.id} for Games portal`, exact: true }).click();
  assert.match(await page.locator('.govuk-error-summary').innerText(), /A decline needs a reason the requester can read/);
  await step(page, '/owner/requests/answer, a decline without a reason');
  gamesCard = page.locator(`#request-${games.id}`);
  await gamesCard.getByLabel('Answer the requester sees').fill('Games sites are outside our acceptable use policy.');
  await page.getByRole('button', { name: `Decline request ${games.id} for Games portal`, exact: true }).click();
  await page.waitForURL(/\/owner\/waiting/);
  assert.match(await page.locator('.govuk-notification-banner').innerText(), /Games portal/);
  await step(page, '/owner/waiting after a decline');
  assert.equal(await requestStatus(games.reference), 'declined');

  // Linked by a name that matches no site: the form comes back, saying so.
  let zoomCard = page.locator(`#request-${zoom.id}`);
  await zoomCard.getByLabel('Link to a catalogue site (its name or identifier)').fill('Zoom Meetings Pro');
  await page.getByRole('button', { name: `Answer request ${zoom.id} for Zoom`, exact: true }).click();
  assert.match(await page.locator('.govuk-error-summary').innerText(), /There is no site called “Zoom Meetings Pro” in the catalogue/);
  await step(page, '/owner/requests/answer, a link to no site');
  assert.equal(await requestStatus(zoom.reference), 'received');
  // Linked by the site's name to a site already on the department's list: allowed at once.
  zoomCard = page.locator(`#request-${zoom.id}`);
  await zoomCard.getByLabel('Link to a catalogue site (its name or identifier)').fill('Zoom');
  await page.getByRole('button', { name: `Answer request ${zoom.id} for Zoom`, exact: true }).click();
  await page.waitForURL(/\/owner\/waiting/);
  assert.equal(await requestStatus(zoom.reference), 'allowed');

  // An answer alone puts the request in review; the requester's page says so.
  const padletCard = page.locator(`#request-${padlet.id}`);
  await padletCard.getByLabel('Answer the requester sees').fill('We are looking at Padlet this week.');
  await padletCard.getByRole('button', { name: `Answer request ${padlet.id} for Padlet`, exact: true }).click();
  await page.waitForURL(/\/owner\/waiting/);
  assert.equal(await requestStatus(padlet.reference), 'in-review');
  assert.match(await page.locator('.govuk-notification-banner').innerText(), /Padlet is now in review\./);
  await page.goto(`${base}/requests/${padlet.reference}`);
  assert.match(await page.locator('main').innerText(), /We are looking at Padlet this week\./);
  await step(page, '/requests/{reference} in review');

  // An administrator: a token shown once, then revoked; a site suspended
  // with a reason, then reinstated; the audit log verified.
  const admin = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const ap = await admin.newPage();
  await signIn(ap, adminToken(registry.db));
  await ap.getByText('Create a token', { exact: true }).click(); // the form is folded away in a details
  await step(ap, '/admin, the token form open');
  await ap.getByLabel('Who or what it is for').fill('GLA resolver');
  await ap.getByLabel('Role', { exact: true }).selectOption('reader');
  await ap.getByRole('button', { name: 'Create token' }).click();
  const shown = (await ap.locator('main').innerText()).match(/alt_[A-Za-z0-9_-]+/);
  assert.ok(shown, 'the new token is shown');
  await step(ap, '/admin with a new token');
  await ap.goto(`${base}/admin`);
  assert.doesNotMatch(await ap.locator('main').innerText(), new RegExp(shown[0]), 'the token is shown once');
  let res = await fetch(`${base}/v1/lists/common`, { headers: { Authorization: `Bearer ${shown[0]}` } });
  assert.equal(res.status, 200);
  await ap.getByRole('button', { name: 'Revoke GLA resolver' }).click();
  assert.match(await ap.locator('.govuk-notification-banner').innerText(), /Revoked the token for GLA resolver \(reader\)\./);
  res = await fetch(`${base}/v1/lists/common`, { headers: { Authorization: `Bearer ${shown[0]}` } });
  assert.equal(res.status, 401, 'a revoked token stops working');
  await ap.getByLabel('Reason for suspending Slido').fill('Supplier breach under investigation');
  await ap.getByRole('button', { name: 'Suspend Slido' }).click();
  assert.match(await ap.locator('main').innerText(), /Supplier breach under investigation/);
  await step(ap, '/admin with a suspended site');
  await page.goto(`${base}/check?q=Slido`);
  assert.match(await page.locator('main').innerText(), /Slido is suspended: Supplier breach under investigation\./);
  await ap.getByRole('button', { name: 'Reinstate Slido' }).click();
  assert.match(await ap.locator('.govuk-notification-banner').innerText(), /Reinstated Slido/);
  await ap.goto(`${base}/admin/audit`);
  assert.match(await ap.locator('main').innerText(), /The chain is intact/);
  assert.match(await ap.locator('main').innerText(), /site\.suspend/);
  await step(ap, '/admin/audit after a suspension');
  console.log(`axe-core, request handling and administration: ${steps} pages, violations by impact: ${JSON.stringify(seen)} (serious and critical: 0)`);
  await admin.close();
  await ctx.close();
});

test('README screenshots', { skip: process.env.UPDATE_SCREENSHOTS !== '1' && 'set UPDATE_SCREENSHOTS=1 to take them' }, async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  await page.goto(`${base}/`);
  await page.screenshot({ path: join(artifacts, 'readme-start.png') });
  await signIn(page, ownerToken(registry.db, 'dsit'));
  await page.screenshot({ path: join(artifacts, 'readme-owner-queue.png') });
  await page.goto(`${base}/common-ground?departments=dsit,hmrc,gla&category=video-conferencing#answer`);
  await page.locator('#answer').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(artifacts, 'readme-common-ground.png') });
  for (const [from, to] of [['readme-start', 'start'], ['readme-owner-queue', 'owner-queue'], ['readme-common-ground', 'common-ground']]) {
    copyFileSync(join(artifacts, `${from}.png`), join(root, 'docs', 'screenshots', `${to}.png`));
  }
  await page.close();
});
