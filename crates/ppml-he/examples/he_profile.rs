//! Times the phases of both modes for `cnn` (random weights unless models/cnn.safetensors exists):
//! `cargo run -p ppml-he --release --example he_profile [model]`.
#![allow(clippy::expect_used, reason = "example")]

use std::time::Instant;

use ppml_he::client::Client;
use ppml_he::plan::{Plan, PoolStrategy};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "cnn".into());
    let mut m = ppml_nn::io::load(std::path::Path::new(&format!("models/{name}.safetensors")))
        .unwrap_or_else(|_| {
            let mut m = ppml_nn::zoo::architecture(&name).expect("zoo");
            ppml_nn::zoo::init_weights(&mut m, 1);
            m
        });
    m.name = name;
    let plan = Plan::compile(&m, PoolStrategy::SumStage, false).expect("plan");
    let params =
        ppml_he::params::choose(&ppml_he::params::PlannerGoals::new(plan.depth())).expect("params");
    println!("{}", ppml_he::params::describe(&params));
    let spec = ppml_he::spec::ClientSpec::throughput(&params, &m, &plan);
    let (client, keys) = Client::new(spec).expect("client");
    let keys = ppml_he::keys::ClientKeys::decode(&params, &keys).expect("keys");
    let server = ppml_he::throughput::ThroughputServer::new(&params, plan);
    server.check_keys(&keys).expect("keys");
    let n = client.batch_capacity();
    let imgs: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            (0..784)
                .map(|p| ((i * 31 + p * 7) % 255) as f32 / 255.0)
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = imgs.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let req = client.encrypt_batch(&refs).expect("enc");
    let te = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let resp = server.handle(&req, &keys).expect("eval");
    let ts = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = client.decrypt_batch(&resp, n).expect("dec");
    let td = t.elapsed().as_secs_f64();
    let up: usize = req.iter().map(Vec::len).sum();
    let down: usize = resp.iter().map(Vec::len).sum();
    println!(
        "throughput: {n} images: encrypt {te:.2}s server {ts:.2}s decrypt {td:.3}s -> {:.0} images/s; up {up} B down {down} B",
        n as f64 / (te + ts + td)
    );
    drop((server, req, resp));
    let mut lat = ppml_he::HeBackend::latency();
    ppml_nn::backend::Backend::setup(&mut lat, &m).expect("latency setup");
    let one = ppml_nn::Tensor::new(vec![1, 1, 28, 28], imgs[0].clone()).expect("tensor");
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (_, stats) = ppml_nn::backend::Backend::infer(&mut lat, &one).expect("latency infer");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if times.len() == 1 {
            println!("latency: {} bytes per image (both ways)", stats.bytes_sent);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "latency: per image end to end, median {:.1} ms (min {:.1} ms) over 5",
        times[2], times[0]
    );
}
