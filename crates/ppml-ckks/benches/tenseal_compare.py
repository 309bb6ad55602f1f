"""Side-by-side reference: the same operations with Microsoft SEAL through TenSEAL 0.3.18.

Run with `python3 crates/ppml-ckks/benches/tenseal_compare.py` right after
`cargo bench -p ppml-ckks --bench ckks` (needs `pip install tenseal`). Parameters match the
Rust bench: N=8192 with [31, 26 x 6] + special 31, scale 2^26; and N=16384 with [50, 40 x 8] + 50.
"""
import time

import tenseal as ts
import tenseal.sealapi as seal


def timeit(f, reps):
    f()
    best = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        best.append((time.perf_counter() - t) / reps)
    return min(best) * 1e3


def run(n, bits, scale_bits, reps):
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, n, coeff_mod_bit_sizes=bits)
    ctx.global_scale = 2 ** scale_bits
    sctx = ctx.seal_context()
    data = sctx.data
    encoder = seal.CKKSEncoder(data)
    evaluator = seal.Evaluator(data)
    keygen = seal.KeyGenerator(data)
    pk = seal.PublicKey()
    keygen.create_public_key(pk)
    rlk = seal.RelinKeys()
    keygen.create_relin_keys(rlk)
    gk = seal.GaloisKeys()
    keygen.create_galois_keys(gk)  # all power-of-two steps, as TenSEAL does
    encryptor = seal.Encryptor(data, pk)
    vals = [(i % 100) / 100 for i in range(n // 2)]
    pt = seal.Plaintext()
    encoder.encode(vals, 2.0 ** scale_bits, pt)
    ct = seal.Ciphertext()
    encryptor.encrypt(pt, ct)
    ct2 = seal.Ciphertext()
    encryptor.encrypt(pt, ct2)

    def enc():
        p = seal.Plaintext()
        encoder.encode(vals, 2.0 ** scale_bits, p)

    def encrypt():
        c = seal.Ciphertext()
        encryptor.encrypt(pt, c)

    def mul():
        c = seal.Ciphertext()
        evaluator.multiply(ct, ct2, c)
        evaluator.relinearize_inplace(c, rlk)
        evaluator.rescale_to_next_inplace(c)

    def rot():
        c = seal.Ciphertext()
        evaluator.rotate_vector(ct, 1, gk, c)

    print(f"SEAL via TenSEAL {ts.__version__}, N={n}, bits={bits}:")
    print(f"  encode            {timeit(enc, reps):8.3f} ms")
    print(f"  encrypt (pk)      {timeit(encrypt, reps):8.3f} ms")
    print(f"  mul+relin+rescale {timeit(mul, reps):8.3f} ms")
    print(f"  rotate            {timeit(rot, reps):8.3f} ms")


if __name__ == "__main__":
    run(8192, [31, 26, 26, 26, 26, 26, 26, 31], 26, 20)
    run(16384, [50] + [40] * 8 + [50], 40, 10)
