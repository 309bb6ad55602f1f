//! The harnesses behind the fuzz targets: one function per decoder of untrusted bytes, each of
//! which must return (an error or a value) and never panic, hang or allocate without bound.
//!
//! `fuzz_targets/*.rs` hand libFuzzer's inputs to these functions, and
//! `crates/ppml/tests/fuzz_corpus.rs` replays the committed corpus (`fuzz/corpus/<target>/`)
//! through the same functions in every CI run. See `docs/security.md`.
#![forbid(unsafe_code)]

use std::path::Path;

/// A harness: decodes `data` every way the target covers.
pub type Harness = fn(&[u8]);

/// Every harness by target name.
pub const TARGETS: &[(&str, Harness)] = &[
    ("idx", idx),
    ("model_file", model_file),
    ("pgm", pgm),
    ("tee_wire", tee_wire),
    ("tee_frame", tee_frame),
    ("tee_server_hello", tee_server_hello),
    ("tee_hello", tee_hello),
    ("mpc_frame", mpc_frame),
    ("mpc_mesh_frame", mpc_mesh_frame),
    ("parties_toml", parties_toml),
    ("onnx", onnx),
    ("ckks", ckks),
    ("he_client_spec", he_client_spec),
    ("he_frame", he_frame),
    ("tls_pem", tls_pem),
    ("hybrid", hybrid),
];

/// IDX files (MNIST images and labels), both ranks.
pub fn idx(data: &[u8]) {
    let _ = ppml_nn::idx::parse_idx(data, 3);
    let _ = ppml_nn::idx::parse_idx(data, 1);
}

/// Model files (safetensors with the architecture in the header).
pub fn model_file(data: &[u8]) {
    let _ = ppml_nn::io::from_bytes(data, Path::new("fuzz.safetensors"));
}

/// Images for `ppml predict` (binary PGM or PNG), and the PGM parser on its own.
pub fn pgm(data: &[u8]) {
    let _ = ppml_nn::image::decode_gray(data);
    let _ = ppml_nn::image::parse_pgm(data);
}

/// The enclave service's requests and responses, and the handshake message reader.
pub fn tee_wire(data: &[u8]) {
    let _ = ppml_tee::wire::Request::decode(data);
    let _ = ppml_tee::wire::Response::decode(data);
    let _ = ppml_tee::wire::read_handshake(&mut &data[..]);
}

/// Encrypted channel frames: a frame from someone without the session key never opens.
pub fn tee_frame(data: &[u8]) {
    use ppml_tee::channel::{Role, SessionKeys};
    let keys = SessionKeys::derive(&[7; 32], &[9; 32]);
    let (_, mut opener) = keys.split(Role::Enclave, 1 << 16);
    if let Ok(plain) = opener.open(data) {
        // Forging a ChaCha20-Poly1305 tag is infeasible; only a sealed frame may open.
        let (mut sealer, _) = keys.split(Role::Client, 1 << 16);
        assert_eq!(sealer.seal(&plain).ok().as_deref(), Some(data));
    }
}

/// The enclave's hello with its attestation evidence, as the client checks it.
pub fn tee_server_hello(data: &[u8]) {
    let policy = ppml_tee::VerifyPolicy {
        expected_measurement: ppml_tee::Measurement([0; 32]),
        allow_simulated: true,
        expected_signer: None,
        dcap: None,
        allow_debug: true,
    };
    if let Ok((client, _hello)) = ppml_tee::handshake::ClientHandshake::start() {
        // The report data binds the client's fresh nonce: random bytes never verify.
        assert!(client.finish(data, &policy, 1 << 16).is_err());
    }
}

/// Both handshake hellos as the enclave and the client parse them: a decoded hello is exactly
/// its bytes.
pub fn tee_hello(data: &[u8]) {
    use ppml_tee::hello::{ClientHello, ServerHello};
    if let Ok(h) = ClientHello::decode(data) {
        assert_eq!(h.encode(), data);
    }
    if let Ok(h) = ServerHello::decode(data) {
        assert_eq!(h.encode().ok().as_deref(), Some(data));
    }
}

/// MPC transport frames (inside TLS), with a small bound on the announced size, each decoded as
/// a client's message to a party and as a party's message to a client.
pub fn mpc_frame(data: &[u8]) {
    use ppml_mpc::messages::{ToClient, ToParty};
    let mut r = data;
    while let Ok(Some(frame)) = ppml_wire::frame::read_word_frame(&mut r, 1 << 12) {
        if let Ok(m) = ToParty::decode(&frame) {
            // A decoded message is exactly its frame.
            assert_eq!(m.encode(), frame);
        }
        let _ = ToClient::decode(frame);
    }
}

/// Frames between the MPC parties (a stream of word frames on a mesh link), each decoded as the
/// link's reader does: a decoded frame is exactly its header and payload.
pub fn mpc_mesh_frame(data: &[u8]) {
    use ppml_mpc::mesh_frame::{header, Body, MeshFrame};
    let mut r = data;
    while let Ok(Some((head, words))) = ppml_wire::frame::read_headed_word_frame(&mut r, 1 << 12) {
        if let Ok(m) = MeshFrame::decode(head, words.clone()) {
            let (abort, payload) = match m.body {
                Body::Abort => (true, Vec::new()),
                Body::Message(words) => (false, words),
            };
            assert_eq!(head, header(m.to, abort));
            assert_eq!(words, payload);
        }
    }
}

/// `parties.toml` deployment files.
pub fn parties_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ppml_mpc::PartiesConfig::parse(text, Path::new("/nonexistent"));
    }
}

/// ONNX models given to `ppml import`.
pub fn onnx(data: &[u8]) {
    let _ = ppml_onnx::import_bytes(data, &ppml_onnx::ImportOptions::default());
}

/// CKKS parameters, and ciphertexts, plaintexts and keys under a fixed parameter set.
pub fn ckks(data: &[u8]) {
    use ppml_ckks::{
        Ciphertext, CkksParameters, GaloisKeys, Plaintext, Preset, PublicKey, RelinearizationKey,
    };
    static PARAMS: std::sync::OnceLock<Option<std::sync::Arc<CkksParameters>>> =
        std::sync::OnceLock::new();
    let _ = CkksParameters::from_bytes(data);
    if let Some(p) = PARAMS.get_or_init(|| Preset::N4096Depth1.build().ok()) {
        let _ = Ciphertext::from_bytes(p, data);
        let _ = Plaintext::from_bytes(p, data);
        let _ = PublicKey::from_bytes(p, data);
        let _ = RelinearizationKey::from_bytes(p, data);
        let _ = GaloisKeys::from_bytes(p, data);
    }
}

/// What an HE client sends the server first: parameters, evaluation keys and the plan layout.
pub fn he_client_spec(data: &[u8]) {
    let _ = ppml_he::spec::ClientSpec::from_bytes(data);
}

/// HE network frames as the client and server read them (a stream of frames), and the blob
/// lists inside keys, batch and result frames.
pub fn he_frame(data: &[u8]) {
    let mut r = data;
    while let Ok((_, payload)) = ppml_he::frame::decode_frame(&mut r) {
        if let Ok(blobs) = ppml_he::frame::decode_blobs(&payload) {
            // A count, then a length and the bytes of each blob, and nothing else.
            let used: usize = blobs.iter().map(|b| 4 + b.len()).sum();
            assert_eq!(4 + used, payload.len());
        }
    }
}

/// PEM certificate and key files (the HE server's `--cert`/`--key`, a client's `--ca`).
pub fn tls_pem(data: &[u8]) {
    let path = Path::new("fuzz.pem");
    let _ = ppml_tls::parse_certs(data, path);
    let _ = ppml_tls::parse_key(data, path);
}

/// The hybrid backend's decoders: a frame (as read from the TLS stream), and, reading the input
/// as little-endian words, the model plan (as the client decodes it), a client's request, the
/// client's upload and public key (as the server decodes them), a result (as the client
/// decrypts it), packed bits, OT16 choices (nibbles) and answers (32-bit halves), a linear
/// layer's messages (uploads as the server decodes them, results as the client decrypts them)
/// of as many images as the words hold, and an IKNP extension matrix of as many blocks.
pub fn hybrid(data: &[u8]) {
    use std::sync::{Arc, OnceLock};
    type Keys = (Arc<ppml_rlwe::Params>, ppml_rlwe::SecretKey);
    static KEYS: OnceLock<Option<Keys>> = OnceLock::new();
    let _ = ppml_hybrid::tls::read_frame(&mut &data[..], "fuzz");
    let Some((params, sk)) = KEYS.get_or_init(|| {
        let params = ppml_rlwe::Params::default_set().ok()?;
        let sk = ppml_rlwe::SecretKey::generate(&params).ok()?;
        Some((params, sk))
    }) else {
        return;
    };
    let words = ppml_wire::words_from_bytes(data);
    let _ = ppml_hybrid::plan::Plan::from_words(&words);
    let _ = ppml_hybrid::session::Request::from_words(&words);
    let _ = ppml_rlwe::Ciphertext::from_upload(params, &words);
    let _ = ppml_rlwe::PublicKey::from_words(params, &words);
    let _ = sk.decrypt(&words);
    let _ = ppml_hybrid::link::unpack_bits("fuzz", &words, 64 * words.len().saturating_sub(1) + 5);
    let _ = ppml_hybrid::link::unpack::<4>("fuzz", &words, 16 * words.len().saturating_sub(1) + 3)
        .map(Iterator::count);
    let _ = ppml_hybrid::link::unpack::<32>("fuzz", &words, 2 * words.len().saturating_sub(1) + 1)
        .map(Iterator::count);
    let blocks = words.len() / (2 * ppml_hybrid::ot::iknp::KAPPA);
    if let Ok(m) = ppml_hybrid::ot::iknp::ExtensionMatrix::decode(words.clone(), blocks) {
        // A decoded matrix is exactly its words.
        assert_eq!(m.encode(), words);
    }
    linear_messages(params, sk, words);
}

/// A linear layer's messages: one blob per image; results kept at a few coefficients (how many
/// is read from the data, so that the corpus reaches both decoders).
fn linear_messages(params: &ppml_rlwe::Params, sk: &ppml_rlwe::SecretKey, words: Vec<u64>) {
    use ppml_hybrid::messages::{result_words, upload_words, LinearResults, LinearUploads};
    let width = upload_words(params);
    if let Ok(ups) = LinearUploads::decode(width, 1, words.len() / width, words.clone()) {
        ups.ciphertexts(params).for_each(drop);
    }
    let k = words.first().map_or(0, |w| w % 64) as usize;
    let kept: Vec<usize> = (0..k).map(|j| j * 127).collect();
    let width = result_words(params, k);
    if let Ok(res) = LinearResults::decode(width, 1, words.len() / width, words.clone()) {
        for ct in res.images().flatten() {
            let _ = sk.decrypt_kept(ct, &kept);
        }
    }
    let _ = sk.decrypt_kept(&words, &kept);
}
