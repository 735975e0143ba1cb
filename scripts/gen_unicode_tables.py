#!/usr/bin/env python3
# Generates src/text/unicode_tables.cc (character classes and NFC data) from Python's unicodedata.
"""Writes the Unicode tables the tokenizer needs.

Usage: python3 scripts/gen_unicode_tables.py [DerivedAge.txt] > src/text/unicode_tables.cc

Two Unicode versions are involved, because Hugging Face `tokenizers` mixes two:
* The character classes (\\p{L}, \\p{N}, \\s) come from Python's `unicodedata` (14.0.0 for Python
  3.11). That matches Oniguruma 6.9.8, bundled by the `onig` crate that `tokenizers` uses for its
  regexes.
* NFC follows the `unicode-normalization-alignments` 0.1.12 crate that `tokenizers` uses, whose
  tables are Unicode 9.0.0. Normalization data is stable for assigned characters, so Unicode 9
  NFC equals Unicode 14 NFC with every code point assigned after 9.0 treated as unassigned
  (combining class 0, no decomposition). That excludes 98 combining marks and U+11938. The age
  of each code point comes from DerivedAge.txt (Debian package unicode-data:
  /usr/share/unicode/DerivedAge.txt, the default).

Each code point gets a 16-bit property word:

  bits 0-7   canonical combining class
  bit  8     \\p{L}  (general category Lu, Ll, Lt, Lm, Lo)
  bit  9     \\p{N}  (Nd, Nl, No)
  bit  10    White_Space (Oniguruma's \\s: includes U+0085, excludes U+FEFF, U+200B, U+180E)
  bit  11    NFC quick check is not "yes", or ccc != 0: the code point needs the full NFC pass

stored as a two-stage table (blocks of 128 code points, deduplicated). Canonical decompositions
(fully recursive, Hangul excluded because it is algorithmic) and primary composition pairs follow
as sorted arrays searched by binary search.
"""

import sys
import unicodedata

BLOCK = 128
MAX_CP = 0x110000

# PropList.txt White_Space, stable since Unicode 6.3 (when U+180E left it).
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680} | set(range(0x2000, 0x200B)) | {
    0x2028, 0x2029, 0x202F, 0x205F, 0x3000}

S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
S_COUNT = L_COUNT * V_COUNT * T_COUNT


def canonical_decomposition(cp):
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith('<'):
        return None
    return [int(x, 16) for x in d.split()]


def full_decomposition(cp):
    d = canonical_decomposition(cp)
    if d is None:
        return [cp]
    out = []
    for x in d:
        out.extend(full_decomposition(x))
    return out


NFC_VERSION = (9, 0)


def read_ages(path):
    ages = {}
    try:
        lines = open(path, encoding='utf-8').read().splitlines()
    except OSError as e:
        sys.exit(f'cannot read {path} ({e}); install the Debian package unicode-data or pass '
                 'the path of DerivedAge.txt')
    for line in lines:
        line = line.split('#')[0].strip()
        if not line:
            continue
        cps, version = [x.strip() for x in line.split(';')]
        first, _, last = cps.partition('..')
        major, minor = version.split('.')[:2]
        for cp in range(int(first, 16), int(last or first, 16) + 1):
            ages[cp] = (int(major), int(minor))
    return ages


def main():
    ages = read_ages(sys.argv[1] if len(sys.argv) > 1 else '/usr/share/unicode/DerivedAge.txt')

    def in_nfc_version(cp):
        return cp in ages and ages[cp] <= NFC_VERSION

    decomp = {}
    comp_pairs = {}
    comp_second = set()
    for cp in range(MAX_CP):
        if 0xD800 <= cp <= 0xDFFF or S_BASE <= cp < S_BASE + S_COUNT:
            continue
        d = canonical_decomposition(cp)
        if d is None or not in_nfc_version(cp):
            continue
        decomp[cp] = full_decomposition(cp)
        # A primary composite: a two-code-point canonical mapping that NFC recomposes.
        if len(d) == 2 and unicodedata.normalize('NFC', chr(cp)) == chr(cp):
            comp_pairs[(d[0], d[1])] = cp
            comp_second.add(d[1])
    # Hangul medial vowels and final consonants compose with a preceding syllable or jamo.
    comp_second.update(range(V_BASE, V_BASE + V_COUNT))
    comp_second.update(range(T_BASE + 1, T_BASE + T_COUNT))

    props = []
    for cp in range(MAX_CP):
        if 0xD800 <= cp <= 0xDFFF:
            props.append(0)
            continue
        ch = chr(cp)
        ccc = unicodedata.combining(ch) if in_nfc_version(cp) else 0
        cat = unicodedata.category(ch)
        p = ccc
        if cat in ('Lu', 'Ll', 'Lt', 'Lm', 'Lo'):
            p |= 1 << 8
        if cat in ('Nd', 'Nl', 'No'):
            p |= 1 << 9
        if cp in WHITE_SPACE:
            p |= 1 << 10
        if ccc != 0 or cp in comp_second or (
                in_nfc_version(cp) and unicodedata.normalize('NFC', ch) != ch):
            p |= 1 << 11
        props.append(p)

    blocks = {}
    stage1 = []
    stage2 = []
    for start in range(0, MAX_CP, BLOCK):
        block = tuple(props[start:start + BLOCK])
        if block not in blocks:
            blocks[block] = len(stage2) // BLOCK
            stage2.extend(block)
        stage1.append(blocks[block])

    out = sys.stdout
    out.write('// Generated by scripts/gen_unicode_tables.py (Python unicodedata '
              f'{unicodedata.unidata_version}); do not edit.\n')
    out.write('#include <cstdint>\n\n#include "model/unicode.h"\n\n')
    out.write('// clang-format off\n')
    out.write('namespace rvec::unicode::tables {\n\n')
    out.write(f'const char kUnicodeVersion[] = "{unicodedata.unidata_version}";\n')
    out.write(f'const char kNfcUnicodeVersion[] = "{NFC_VERSION[0]}.{NFC_VERSION[1]}.0";\n\n')
    out.write(f'const uint16_t kStage1[{len(stage1)}] = {{\n')
    write_ints(out, stage1)
    out.write('};\n\n')
    out.write(f'const uint16_t kStage2[{len(stage2)}] = {{\n')
    write_ints(out, stage2)
    out.write('};\n\n')

    # Decompositions: sorted code points, offsets into one flat array (offset[i+1] - offset[i]).
    keys = sorted(decomp)
    flat = []
    offsets = []
    for k in keys:
        offsets.append(len(flat))
        flat.extend(decomp[k])
    offsets.append(len(flat))
    out.write(f'const uint32_t kDecompKeys[{len(keys)}] = {{\n')
    write_ints(out, keys)
    out.write('};\n')
    out.write(f'const uint16_t kDecompOffsets[{len(offsets)}] = {{\n')
    write_ints(out, offsets)
    out.write('};\n')
    out.write(f'const uint32_t kDecompData[{len(flat)}] = {{\n')
    write_ints(out, flat)
    out.write('};\n')
    out.write(f'const uint32_t kDecompCount = {len(keys)};\n\n')

    pairs = sorted(((a << 21) | b, c) for (a, b), c in comp_pairs.items())
    out.write(f'const uint64_t kCompKeys[{len(pairs)}] = {{\n')
    write_ints(out, [k for k, _ in pairs])
    out.write('};\n')
    out.write(f'const uint32_t kCompValues[{len(pairs)}] = {{\n')
    write_ints(out, [v for _, v in pairs])
    out.write('};\n')
    out.write(f'const uint32_t kCompCount = {len(pairs)};\n\n')
    out.write('}  // namespace rvec::unicode::tables\n')
    out.write('// clang-format on\n')


def write_ints(out, values):
    line = ' '
    for v in values:
        item = f' {v},'
        if len(line) + len(item) > 99:
            out.write(line + '\n')
            line = ' '
        line += item
    if line.strip():
        out.write(line + '\n')


if __name__ == '__main__':
    main()
