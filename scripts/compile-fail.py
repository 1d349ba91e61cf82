#!/usr/bin/env python3
"""Prove the type rules of the kernel::fs abstractions: compile-fail cases.

The kernel's doctest runner cannot run `compile_fail` doctests (its test
builder only writes the test out; see the TODO at `assert_pinned!` in
rust/kernel/init.rs), so the cases are written as `ignore` doctests whose
first line is `// compile_fail: EXXXX`, and this script checks them:

- the case, compiled as a crate against the built kernel crate with the
  exact rustc command kbuild used for the module, must fail with error
  EXXXX (a different error means the case tests something else);
- the same case without its lines marked `// ERROR` must compile, so the
  failure comes from the marked line and not from a typo elsewhere.

usage: compile-fail.py KERNEL_BUILD_DIR MODULE_BUILD_DIR SOURCE_DIR...
Prints one `ok`/`not ok` line per case and `compile-fail: N passed, N
failed`; exits non-zero on any failure or if no case was found.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile


def rustc_command(module_dir):
    """The module's rustc command line from kbuild's .cmd file, without
    its input, outputs and crate name."""
    cmd = open(os.path.join(module_dir, 'samples/rust/.rbfs.o.cmd')).read()
    line = next(l for l in cmd.splitlines() if l.startswith('savedcmd_'))
    rustc = line.split(':=', 1)[1].split(' ; ')[0]
    args = shlex.split(rustc)
    args = [a for a in args if not a.startswith('RUST_MODFILE=')]
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ('--crate-name', '--out-dir', '--crate-type'):
            skip = True
            continue
        if a.startswith('--emit') or a.endswith('.rs'):
            continue
        out.append(a)
    return out


def cases(src_dirs):
    """(file, line, code, text) of every compile-fail case."""
    found = []
    doc = re.compile(r'^\s*//[/!] ?(.*)$')
    for d in src_dirs:
        for root, _, files in os.walk(d):
            for f in sorted(files):
                if not f.endswith('.rs'):
                    continue
                path = os.path.join(root, f)
                lines = open(path).read().splitlines()
                i = 0
                while i < len(lines):
                    m = doc.match(lines[i])
                    if m and m.group(1).strip() == '```ignore' and i + 1 < len(lines):
                        m2 = doc.match(lines[i + 1])
                        c = m2 and re.match(r'// compile_fail: (E\d{4})', m2.group(1).strip())
                        if c:
                            body, j = [], i + 2
                            while j < len(lines):
                                mj = doc.match(lines[j])
                                if not mj or mj.group(1).strip() == '```':
                                    break
                                t = mj.group(1)
                                body.append(t[2:] if t.startswith('# ') else t)
                                j += 1
                            found.append((path, i + 1, c.group(1), '\n'.join(body)))
                            i = j
                    i += 1
    return found


PRELUDE = ('#![allow(dead_code, unused_imports, unused_variables, unused_mut, missing_docs,'
           ' unreachable_pub, unused_must_use, clippy::all)]\n')


def compile_case(kbuild, base, text, tmp):
    src = os.path.join(tmp, 'case.rs')
    with open(src, 'w') as f:
        f.write(PRELUDE + text + '\n')
    r = subprocess.run(['/usr/bin/env'] + base + ['--crate-type', 'rlib', '--crate-name', 'compile_fail_case',
                                                  '--emit=metadata', '-o', os.path.join(tmp, 'case.rmeta'), src],
                       cwd=kbuild, capture_output=True, text=True, env=dict(os.environ, RUSTC_BOOTSTRAP='1'))
    return r.returncode, r.stderr


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    kbuild, module_dir, srcs = sys.argv[1], sys.argv[2], sys.argv[3:]
    base = rustc_command(module_dir)
    found = cases(srcs)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path, line, code, text in found:
            name = f'{os.path.relpath(path)}:{line} {code}'
            rc, err = compile_case(kbuild, base, text, tmp)
            errors = sorted(set(re.findall(r'error\[(E\d{4})\]', err)))
            why = None
            if rc == 0:
                why = 'compiled, but must not'
            elif code not in errors:
                first = next((l for l in err.splitlines() if l.startswith('error')), err.strip()[:200])
                why = f'failed without {code}: {first}'
            else:
                ok_text = '\n'.join(l for l in text.splitlines() if '// ERROR' not in l)
                if ok_text == text:
                    why = 'no line is marked // ERROR'
                else:
                    rc2, err2 = compile_case(kbuild, base, ok_text, tmp)
                    if rc2 != 0:
                        first = next((l for l in err2.splitlines() if l.startswith('error')), err2.strip()[:200])
                        why = f'does not compile even without its // ERROR lines: {first}'
            if why:
                failed += 1
                print(f'not ok compile_fail {name}: {why}')
            else:
                passed += 1
                print(f'ok compile_fail {name}')
    if not found:
        print('not ok compile_fail: no case found')
        failed += 1
    print(f'compile-fail: {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
