// Shared pieces for the end-to-end tests: a real registry process, Debian's
// Chromium, owner tokens from the CLI, and axe-core's accessibility check.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const bin = join(root, 'bin', 'allowlist');
export const artifacts = join(root, 'e2e', 'artifacts');
mkdirSync(artifacts, { recursive: true });

// startRegistry runs `allowlist serve --seed` on a free port in a new
// temporary directory and resolves to { base, db, proc } once it listens.
export async function startRegistry(extraArgs = []) {
  const db = join(mkdtempSync(join(tmpdir(), 'allowlist-e2e-')), 'registry.db');
  const proc = spawn(bin, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--seed', '--log-level', 'warn', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('the registry did not start in 20 s')), 20000);
    proc.stdout.on('data', (chunk) => {
      seen += chunk;
      const found = /registry listening on (http:\/\/\S+)/.exec(seen);
      if (found) { clearTimeout(timer); resolve(found[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the registry exited with ${code}`)); });
  });
  return { base, db, proc };
}

// ownerToken creates a filtering owner's token for dept with the CLI.
export function ownerToken(db, dept) {
  const printed = execFileSync(bin, ['token', 'create', '--db', db, '--role', 'owner', '--department', dept, '--name', `${dept}-owner-e2e`]);
  return printed.toString().trim().split('\n').pop();
}

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync',
      '--disable-background-networking', '--disable-component-update', '--disable-quic'],
  });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// expectAccessible runs axe-core on the page (its context must bypass the
// pages' CSP, which allows no script) and fails on any serious or
// critical violation. It returns the counts by impact.
export async function expectAccessible(page, label) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const counts = {};
  for (const v of result.violations) counts[v.impact] = (counts[v.impact] || 0) + 1;
  const grave = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(grave.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`), [],
    `${label}: serious or critical accessibility violations`);
  return counts;
}
