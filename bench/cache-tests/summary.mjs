// Summarise a results file of the HTTP working group's cache tests
// (npm package http-cache-tests) the way cache-tests.fyi counts them.
// usage: node summary.mjs PACKAGE_DIR RESULTS.json [--list]
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [pkg, file, flag] = process.argv.slice(2)
const load = (rel) => import(pathToFileURL(path.join(pkg, rel)).href)
const tests = (await load('tests/index.mjs')).default
tests.push((await load('tests/surrogate-control.mjs')).default)
const display = await load('lib/display.mjs')
const results = JSON.parse(fs.readFileSync(file, 'utf8'))

const names = { '✅': 'pass', '⛔️': 'fail', '⚠️': 'optimal_fail', Y: 'yes', N: 'no', '🔹': 'setup_fail', '⁉️': 'harness_fail', '⚪️': 'dependency_fail', '↻': 'retry', '-': 'untested' }
const counts = {}
const lines = []
for (const suite of tests) {
  for (const test of suite.tests) {
    const kind = names[display.determineTestResult(tests, test.id, results)[2]] || 'unknown'
    counts[kind] = (counts[kind] || 0) + 1
    if (kind !== 'pass' && kind !== 'yes') lines.push(`${kind}\t${test.id}\t${typeof results[test.id] === 'object' ? JSON.stringify(results[test.id]) : ''}`)
  }
}
if (flag === '--list') for (const l of lines) console.log(l)
console.log(JSON.stringify(counts))
