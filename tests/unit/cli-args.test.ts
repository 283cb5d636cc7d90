// The skiff CLI's argument parser: commands, the global --vm anywhere, per-command flags (and refusing the flags a
// command does not take), -f meaning --force for reset and --follow for logs, `shell -- CMD`, help topics.
import { afterEach, describe, expect, it } from 'vitest';
import { parseArgs, usage, UsageError } from '../../electron/cli/args.js';

const saved = process.env.SKIFF_VM;
afterEach(() => {
  if (saved === undefined) delete process.env.SKIFF_VM;
  else process.env.SKIFF_VM = saved;
});

describe('parseArgs', () => {
  it('defaults: help, vm "default"', () => {
    delete process.env.SKIFF_VM;
    expect(parseArgs([])).toMatchObject({ command: 'help', vm: 'default' });
    expect(parseArgs(['status'])).toMatchObject({ command: 'status', vm: 'default', json: false });
  });

  it('--vm before or after the command, and --vm=NAME; $SKIFF_VM as the default', () => {
    expect(parseArgs(['--vm', 'dev', 'start']).vm).toBe('dev');
    expect(parseArgs(['start', '--vm', 'dev']).vm).toBe('dev');
    expect(parseArgs(['start', '--vm=dev2']).vm).toBe('dev2');
    process.env.SKIFF_VM = 'other';
    expect(parseArgs(['start']).vm).toBe('other');
    expect(parseArgs(['start', '--vm', 'x']).vm).toBe('x');
  });

  it('refuses a bad VM name, a missing value, an unknown command or option', () => {
    expect(() => parseArgs(['start', '--vm', 'Bad/Name'])).toThrow(/invalid VM name "Bad\/Name"/);
    expect(() => parseArgs(['start', '--vm'])).toThrow(/--vm needs a value/);
    expect(() => parseArgs(['launch'])).toThrow(UsageError);
    expect(() => parseArgs(['launch'])).toThrow(/unknown command "launch"/);
    expect(() => parseArgs(['status', '--bogus'])).toThrow(/unknown option --bogus/);
    expect(() => parseArgs(['status', 'extra'])).toThrow(/unexpected argument "extra" for status/);
  });

  it('flags belong to their command', () => {
    expect(parseArgs(['status', '--json']).json).toBe(true);
    expect(() => parseArgs(['start', '--json'])).toThrow(/start has no option --json/);
    expect(parseArgs(['context', '--use']).use).toBe(true);
    expect(() => parseArgs(['status', '--use'])).toThrow(/status has no option --use/);
    expect(parseArgs(['stop', '--quit']).quit).toBe(true);
    expect(() => parseArgs(['docker-env', '--json'])).toThrow(/docker-env has no option --json/);
    expect(() => parseArgs(['status', '--json=yes'])).toThrow(/--json takes no value/);
  });

  it('-f is --force for reset and --follow for logs, wherever it stands', () => {
    expect(parseArgs(['reset', '-f'])).toMatchObject({ force: true, follow: false });
    expect(parseArgs(['reset', '--force'])).toMatchObject({ force: true });
    expect(parseArgs(['logs', '-f'])).toMatchObject({ follow: true, force: false });
    expect(parseArgs(['-f', 'logs'])).toMatchObject({ follow: true, force: false });
    expect(parseArgs(['logs', '--follow', '-n', '50'])).toMatchObject({ follow: true, lines: 50 });
    expect(parseArgs(['logs', '--lines=7']).lines).toBe(7);
    expect(() => parseArgs(['logs', '-n', 'x'])).toThrow(/-n needs a number of lines/);
    expect(() => parseArgs(['logs', '-n', '0'])).toThrow(/-n needs a number of lines/);
    expect(() => parseArgs(['status', '-f'])).toThrow(/status has no option -f/);
  });

  it('docker-env --shell', () => {
    expect(parseArgs(['docker-env']).shell).toBe('sh');
    expect(parseArgs(['docker-env', '--shell', 'fish']).shell).toBe('fish');
    expect(parseArgs(['docker-env', '--shell=pwsh']).shell).toBe('powershell');
    expect(parseArgs(['docker-env', '--shell', 'PowerShell']).shell).toBe('powershell');
    expect(parseArgs(['docker-env', '--shell', 'zsh']).shell).toBe('sh');
    expect(() => parseArgs(['docker-env', '--shell', 'tcsh'])).toThrow(/--shell must be/);
  });

  it('shell takes a command after -- or as is', () => {
    expect(parseArgs(['shell']).rest).toEqual([]);
    expect(parseArgs(['shell', '--', 'uname', '-a'])).toMatchObject({ command: 'shell', rest: ['uname', '-a'] });
    expect(parseArgs(['shell', 'ls', '-l', '/'])).toMatchObject({ rest: ['ls', '-l', '/'] });
    expect(parseArgs(['--vm', 'dev', 'shell', '--', '--vm'])).toMatchObject({ vm: 'dev', rest: ['--vm'] });
    expect(() => parseArgs(['status', '--', 'x'])).toThrow(/status takes no arguments after --/);
  });

  it('help and version', () => {
    expect(parseArgs(['--help'])).toMatchObject({ command: 'help', topic: undefined });
    expect(parseArgs(['-h'])).toMatchObject({ command: 'help' });
    expect(parseArgs(['start', '--help'])).toMatchObject({ command: 'help', topic: 'start' });
    expect(parseArgs(['help', 'logs'])).toMatchObject({ command: 'help', topic: 'logs' });
    // --help wins over a flag the command would refuse
    expect(parseArgs(['start', '--json', '--help'])).toMatchObject({ command: 'help', topic: 'start' });
    expect(parseArgs(['--version'])).toMatchObject({ command: 'version' });
    expect(parseArgs(['version'])).toMatchObject({ command: 'version' });
  });

  it('usage lists every command and the exit codes', () => {
    const u = usage();
    for (const c of ['start', 'stop', 'restart', 'status', 'reset', 'shell', 'logs', 'ssh-config', 'context'])
      expect(u).toContain(`  ${c}`);
    expect(u).toContain('docker-env [--shell sh|fish|powershell]');
    expect(u).toMatch(/3 Skiff is not running/);
    expect(usage('reset')).toMatch(/^usage: skiff reset \[-f\|--force\]/);
  });
});
