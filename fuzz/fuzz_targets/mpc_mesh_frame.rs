#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ppml_fuzz::mpc_mesh_frame(data));
