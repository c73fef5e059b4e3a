#!/usr/bin/env python3
# Prints the known-answer parity of test/wasm/codec.test.ts from the definition of ISA-L's
# gf_gen_cauchy1_matrix alone (bit-serial GF(2^8) multiply mod 0x11d, inverse as a^254),
# independently of both the WASM codec and reference-rs.ts. Run: python3 isal-known-answers.py
def mul(a, b):
    p = 0
    while b:
        if b & 1:
            p ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return p

def inv(a):
    r = 1
    for _ in range(254):
        r = mul(r, a)
    return r

LENGTH = 17
for scheme, k, m in [("rs", 3, 2), ("rs", 6, 3), ("rs", 10, 4), ("xor", 2, 1)]:
    data = [[(31 * i + 17 * j + 7) & 0xFF for i in range(LENGTH)] for j in range(k)]
    parity = []
    for r in range(m):
        row = [inv((k + r) ^ j) for j in range(k)] if scheme == "rs" else [1] * k
        p = [0] * LENGTH
        for j in range(k):
            for i in range(LENGTH):
                p[i] ^= mul(row[j], data[j][i])
        parity.append(bytes(p).hex())
    print(scheme, k, m, parity)
print("rs 3 2 cauchy rows 3, 4:", [[hex(inv(i ^ j)) for j in range(3)] for i in (3, 4)])
