/**
 * One install step: every npm package an edge function imports is a dependency of this package at the
 * exact version its deno.json pins, so `npm install` puts it where Deno (--node-modules-dir=manual)
 * looks, and the installed copy really is that version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { discoverFunctions } from '../scripts/lib/functions.ts';
import { ROOT } from '../scripts/lib/stack.ts';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const functionsDir = path.join(ROOT, 'supabase/functions');

function npmImports(name: string): Map<string, string> {
  const config = JSON.parse(fs.readFileSync(path.join(functionsDir, name, 'deno.json'), 'utf8'));
  const out = new Map<string, string>();
  for (const target of Object.values<string>(config.imports)) {
    const m = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)/.exec(target);
    if (!m) throw new Error(`${name}/deno.json imports ${target}: only npm: specifiers can be installed by npm`);
    out.set(m[1], m[2]);
  }
  return out;
}

describe.each(discoverFunctions(functionsDir))('function %s', (name) => {
  test('keeps nodeModulesDir "none" in deno.json for `supabase functions deploy`', () => {
    const config = JSON.parse(fs.readFileSync(path.join(functionsDir, name, 'deno.json'), 'utf8'));
    expect(config.nodeModulesDir).toBe('none');
  });

  test('imports only packages that are dependencies at the pinned version, installed as that version', () => {
    const imports = npmImports(name);
    expect(imports.size).toBeGreaterThan(0);
    for (const [dep, version] of imports) {
      expect(pkg.dependencies[dep], `${dep} in package.json dependencies`).toBe(version);
      const installed = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', dep, 'package.json'), 'utf8'));
      expect(installed.version, `installed ${dep}`).toBe(version);
    }
  });
});
