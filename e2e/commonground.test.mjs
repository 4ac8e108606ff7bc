// "Find a tool you can all use" in Debian's headless Chromium, against the
// real registry binary: with and without JavaScript, its shareable link,
// the request to the one organisation that has not decided, and axe-core.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startRegistry, ownerToken, launchChromium, expectAccessible, artifacts } from './lib.mjs';

let registry, base, browser, owners;

const three = ['Department for Science, Innovation and Technology', 'HM Revenue and Customs', 'Greater London Authority'];
const answerPath = '/common-ground?departments=dsit,gla,hmrc&category=video-conferencing';

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
  return res.json();
}

before(async () => {
  // A quorum of 4: with the seed's decisions Zoom and Teams are on common,
  // Google Meet (DSIT and ONS) is on DSIT's list only, Webex on DEFRA's.
  registry = await startRegistry(['--quorum', '4']);
  base = registry.base;
  owners = Object.fromEntries(['dsit', 'hmrc', 'gla'].map((d) => [d, ownerToken(registry.db, d)]));
  // GLA approves Meet (3 of 4: on GLA's list, one HMRC decision away from
  // all three); HMRC objects to Webex.
  await api('PUT', '/v1/sites/google-meet/signoffs/gla', owners.gla, { decision: 'approve', comment: 'used with boroughs' });
  await api('PUT', '/v1/sites/webex/signoffs/hmrc', owners.hmrc, { decision: 'object', comment: 'No data processing agreement yet' });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  registry?.proc.kill('SIGTERM');
});

// askThree fills the form for DSIT, HMRC and GLA and video tools.
async function askThree(page) {
  for (const name of three) await page.getByLabel(name, { exact: true }).check();
  await page.getByLabel('Kind of tool (optional)').selectOption('video-conferencing');
  await page.getByRole('button', { name: 'Find tools' }).click();
  assert.equal(page.url(), base + answerPath, 'the form lands on the stable address');
}

// answerOf reads the answer off the page: each tool's overall tag and one
// tag per organisation, in page order.
async function answerOf(page) {
  return page.locator('[data-tool]').evaluateAll((cards) => cards.map((card) => ({
    id: card.dataset.tool,
    tag: card.querySelector('.govuk-summary-card__title .govuk-tag').textContent.trim(),
    orgs: Object.fromEntries([...card.querySelectorAll('.govuk-summary-list__row')].map((row) =>
      [row.querySelector('dt').textContent.trim(), row.querySelector('dd').textContent.trim().replace(/\s+/g, ' ')])),
  })));
}

const expected = [
  { id: 'microsoft-teams', tag: 'You can all use it' },
  { id: 'zoom', tag: 'You can all use it' },
  { id: 'google-meet', tag: 'One decision away' },
  { id: 'webex', tag: 'Allowed by 0 of 3' },
];

test('staff find the video tools three organisations can all use, share the answer and ask the one that has not decided', async () => {
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1100, height: 900 } }); // for axe
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Find a tool you can all use' }).click();
  assert.equal(await page.locator('h1').innerText(), 'Find a tool you can all use');
  await askThree(page);

  const answer = await answerOf(page);
  assert.deepEqual(answer.map(({ id, tag }) => ({ id, tag })), expected);
  const meet = answer.find((t) => t.id === 'google-meet');
  assert.deepEqual(meet.orgs, {
    'Department for Science, Innovation and Technology': 'Allowed', 'Greater London Authority': 'Allowed', 'HM Revenue and Customs': 'Not decided yet',
  });
  assert.match(answer.find((t) => t.id === 'webex').orgs['HM Revenue and Customs'], /^Objected On \d+ \w+ \d{4}: No data processing agreement yet$/);
  assert.equal(await page.locator('[data-category-summary]').innerText(), '2 you can all use, 1 one decision away, 1 further away.');

  // The API says the same, in the same order, from the same list versions.
  const ground = await (await fetch(`${base}/v1${answerPath}`)).json();
  assert.deepEqual([...ground.allowed_for_all, ...ground.one_decision_away, ...ground.others].map((s) => s.id), expected.map((t) => t.id));
  for (const col of ground.departments) {
    const read = col.scope === 'common' ? `The common list, version ${col.version} (its own list is the same)` : `Its own list, version ${col.version}`;
    assert.equal(await page.locator(`[data-list-read="${col.id}"]`).innerText(), read);
  }
  // The link to send is the address of this answer.
  assert.equal(await page.locator('[data-share-link]').innerText(), base + answerPath);

  const counts = await expectAccessible(page, 'common ground answer');
  console.log(`axe on the answer: ${JSON.stringify(counts)} (no serious or critical)`);
  await page.screenshot({ path: join(artifacts, 'common-ground.png'), fullPage: true });

  // Ask HMRC, the one organisation that has not decided on Google Meet:
  // the request form comes filled in, and the reason can be added to.
  await page.getByRole('button', { name: 'Ask HM Revenue and Customs to decide on Google Meet' }).click();
  assert.match(await page.locator('h1').innerText(), /Request a tool/);
  assert.equal(await page.getByLabel('Tool').inputValue(), 'Google Meet');
  assert.equal(await page.locator('#department').inputValue(), 'hmrc');
  const reason = page.getByLabel('Why do you need it?');
  await reason.fill((await reason.inputValue()) + ' We meet every Tuesday.');
  await page.getByRole('button', { name: 'Send request' }).click();
  assert.match(await page.locator('h1').innerText(), /Request sent/);
  const requests = await api('GET', '/v1/requests', owners.hmrc);
  const mine = requests.filter((r) => r.tool === 'Google Meet' && r.department === 'hmrc');
  assert.equal(mine.length, 1, JSON.stringify(requests));
  assert.ok(mine[0].reason.includes(base + answerPath), mine[0].reason);
  assert.match(mine[0].reason, /allowed by Department for Science, Innovation and Technology and Greater London Authority/);
  assert.match(mine[0].reason, /We meet every Tuesday\.$/);
  await context.close();
});

test('without JavaScript: the checkboxes, the answer, the shared link and the request button all work', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${base}/common-ground`);
  await askThree(page);
  const answer = await answerOf(page);
  assert.deepEqual(answer.map(({ id, tag }) => ({ id, tag })), expected);
  for (const name of three) assert.ok(await page.getByLabel(name, { exact: true }).isChecked(), `${name} stays ticked`);

  // A participant opens the link the organiser sent: a new browser, no
  // cookies, no JavaScript, the same answer.
  const other = await browser.newContext({ javaScriptEnabled: false });
  const shared = await other.newPage();
  await shared.goto(await page.locator('[data-share-link]').getAttribute('href'));
  assert.deepEqual(await answerOf(shared), answer);
  await other.close();

  await page.getByRole('button', { name: 'Ask HM Revenue and Customs to decide on Google Meet' }).click();
  assert.match(await page.locator('h1').innerText(), /Request a tool/);
  await page.getByRole('button', { name: 'Send request' }).click();
  assert.match(await page.locator('h1').innerText(), /Request sent/);
  await context.close();
});

test('mistakes are summarised and linked to their fields', async () => {
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${base}/common-ground`);
  await expectAccessible(page, 'common ground form');
  const res = await Promise.all([page.waitForResponse((r) => r.url().includes('category=')), page.getByRole('button', { name: 'Find tools' }).click()]);
  assert.equal(res[0].status(), 422);
  assert.match(await page.locator('.govuk-error-summary').innerText(), /Select the organisations that need to work together/);
  assert.equal(await page.locator('.govuk-error-summary a').getAttribute('href'), '#departments');
  assert.equal(await page.locator('#departments').count(), 1, 'the link has a target');
  await expectAccessible(page, 'common ground error');

  const unknown = await page.goto(`${base}/common-ground?departments=dsit,nope`);
  assert.equal(unknown.status(), 422);
  assert.match(await page.locator('.govuk-error-summary').innerText(), /"nope"/);
  await context.close();
});
