#!/usr/bin/env python3
"""make check's lints of the Rust code: rustfmt and clippy.

- `rustfmt --check` of rust/ and samples/rust/ with the kernel's
  .rustfmt.toml (copied to the repository's root);
- clippy (`CLIPPY=1`'s clippy-driver, of the toolchain that builds the
  kernel) on the kernel crate and on the module, with the exact rustc
  command lines kbuild used for them (so the kernel's lint set, including
  `undocumented_unsafe_blocks`), emitting metadata into a temporary
  directory: the kernel build is not touched.  Warnings count only in the
  project's own files (upstream files are upstream's business).

usage: lint.py KERNEL_BUILD_DIR MODULE_BUILD_DIR
Prints `ok`/`not ok` per lint and exits non-zero if any failed.
"""
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPPY = '/usr/bin/clippy-driver'


def saved_command(cmd_file):
    line = next(l for l in open(cmd_file).read().splitlines() if l.startswith('savedcmd_'))
    rustc = line.split(':=', 1)[1].split(' ; ')[0]
    return shlex.split(rustc)


def clippy(kbuild, cmd_file, tmp, ours):
    """Runs clippy with the command of `cmd_file`; returns its warnings and
    errors in files whose path contains one of `ours`."""
    args = saved_command(cmd_file)
    env = dict(os.environ, RUSTC_BOOTSTRAP='1')
    out = []
    for a in args:
        if '=' in a and not a.startswith('-') and a.split('=')[0].isupper():
            env[a.split('=', 1)[0]] = a.split('=', 1)[1]
            continue
        if a.endswith('/rustc') and not out:
            out.append(CLIPPY)
            continue
        if a.startswith('--emit'):
            continue
        out.append(a)
    out += [f'--emit=metadata={tmp}/lint.rmeta']
    r = subprocess.run(out, cwd=kbuild, capture_output=True, text=True, env=env)
    findings, block = [], []
    for line in r.stderr.splitlines() + ['']:
        if re.match(r'^(warning|error)', line) or line == '':
            if block and any(o in '\n'.join(block) for o in ours):
                if not re.match(r'^(warning|error): \d+ (warning|error)s? emitted', block[0]):
                    findings.append('\n'.join(block))
            block = [line] if line else []
        else:
            block.append(line)
    if r.returncode != 0 and not findings:
        findings.append(f'clippy-driver exited {r.returncode}: ' + r.stderr[-2000:])
    return findings


def main():
    kbuild, module_dir = sys.argv[1], sys.argv[2]
    failed = 0
    files = sorted(glob.glob(f'{ROOT}/rust/**/*.rs', recursive=True) + glob.glob(f'{ROOT}/samples/rust/**/*.rs', recursive=True))
    r = subprocess.run(['rustfmt', '--edition', '2021', '--check', '--config-path', f'{ROOT}/.rustfmt.toml'] + files,
                       capture_output=True, text=True)
    if r.returncode == 0:
        print('ok lint rustfmt --check (rust/, samples/rust/)')
    else:
        failed += 1
        diffs = [l for l in r.stdout.splitlines() if l.startswith('Diff in')]
        print(f'not ok lint rustfmt --check: {len(diffs)} places differ (run rustfmt on them):')
        print('\n'.join('#   ' + d for d in diffs[:20]))
    with tempfile.TemporaryDirectory() as tmp:
        for what, cmd, ours in (
            ('kernel crate', f'{kbuild}/rust/.kernel.o.cmd', ('rust/kernel/fs', 'rust/kernel/block/bio.rs')),
            ('rbfs module', f'{module_dir}/samples/rust/.rbfs.o.cmd', ('samples/rust/rbfs',)),
        ):
            found = clippy(kbuild, cmd, tmp, ours)
            if found:
                failed += 1
                print(f'not ok lint clippy ({what}): {len(found)} findings')
                for f in found[:15]:
                    print('\n'.join('#   ' + l for l in f.splitlines()))
            else:
                print(f'ok lint clippy ({what})')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
