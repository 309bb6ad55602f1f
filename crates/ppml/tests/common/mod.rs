//! Helpers the integration tests share: running `ppml` as a user does, a server process that is
//! killed when the test ends, MNIST digits as PGM files.
#![allow(
    dead_code,
    reason = "each test binary uses a subset of the shared helpers"
)]
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ppml_nn::idx::{load_mnist, Dataset, Split};

/// How many times a configured timeout a test waits before it calls a step hung. Generous on
/// purpose: the deadline catches a hang (a step that would never end), never slowness, so a
/// loaded machine cannot trip it; speed is measured by the benchmarks.
pub const NO_HANG_FACTOR: u32 = 5;

/// The deadline for a step bounded by `timeout`: [`NO_HANG_FACTOR`] times it.
pub fn no_hang(timeout: Duration) -> Duration {
    timeout * NO_HANG_FACTOR
}

/// The repository root: `ppml` runs there, as a user would after cloning.
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Runs `ppml args` in the repository root to completion and captures its output.
pub fn ppml<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ppml"))
        .args(args)
        .current_dir(REPO)
        .output()
        .expect("run ppml")
}

/// The stdout of a finished run, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The stderr of a finished run, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path in the temporary directory for this test process: `ppml-{name}-{pid}`.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ppml-{name}-{}", std::process::id()))
}

/// The MNIST test set, loaded once per test binary.
pub fn mnist() -> &'static Dataset {
    static TEST: OnceLock<Dataset> = OnceLock::new();
    TEST.get_or_init(|| {
        load_mnist(&Path::new(REPO).join("data/mnist"), Split::Test).expect("MNIST")
    })
}

/// Writes a 28x28 greyscale PGM of `pixels` to `path` and returns the path as a string.
pub fn write_pgm(path: &Path, pixels: &[u8]) -> String {
    let mut pgm = b"P5\n28 28\n255\n".to_vec();
    pgm.extend_from_slice(pixels);
    std::fs::write(path, pgm).expect("write");
    path.to_str().expect("utf8").to_string()
}

/// Runs `ppml he-certs --out DIR` for a fresh `DIR` named after `tag`: a CA (`ca.pem`) and the
/// `he-server` identity (`he-server.pem`, `he-server.key`). Returns `DIR`.
pub fn he_certs(tag: &str) -> PathBuf {
    let dir = temp_path(&format!("he-certs-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    let out = ppml(&[OsStr::new("he-certs"), OsStr::new("--out"), dir.as_os_str()]);
    assert!(out.status.success(), "he-certs: {}", stderr(&out));
    dir
}

/// The `he-server` arguments that give it the identity in `dir` (from [`he_certs`]).
pub fn he_server_identity(dir: &Path) -> Vec<String> {
    let path = |f: &str| dir.join(f).to_str().expect("utf8").to_string();
    vec![
        "--cert".into(),
        path("he-server.pem"),
        "--key".into(),
        path("he-server.key"),
    ]
}

/// The address a server announces as the last word of a stderr line.
pub fn listen_addr(line: &str) -> String {
    line.rsplit(' ').next().expect("address").to_string()
}

/// A long-running `ppml` process (a server), killed when dropped (also when a test fails).
pub struct Server {
    child: Child,
    lines: Option<Lines<BufReader<ChildStderr>>>,
}

impl Server {
    /// Starts `ppml args` in the repository root with its stderr piped for reading.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ppml"))
            .args(args)
            .current_dir(REPO)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ppml");
        let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        Self {
            child,
            lines: Some(lines),
        }
    }

    /// The next line the process writes to stderr.
    pub fn line(&mut self) -> String {
        self.lines
            .as_mut()
            .and_then(Iterator::next)
            .expect("a line")
            .expect("utf8")
    }

    /// Reads (and drops) the rest of stderr on a thread, so a chatty process never blocks on a
    /// full pipe.
    pub fn drain_in_background(&mut self) {
        if let Some(lines) = self.lines.take() {
            std::thread::spawn(move || lines.for_each(drop));
        }
    }

    /// Reads stderr lines until `f` maps one to `Some`; that value, or `None` if stderr ends.
    pub fn find_line<T>(&mut self, mut f: impl FnMut(&str) -> Option<T>) -> Option<T> {
        for line in self.lines.as_mut()?.by_ref() {
            if let Some(v) = f(&line.expect("line")) {
                return Some(v);
            }
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits for the process to exit on its own; its status, or a failure after `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            assert!(t.elapsed() < limit, "server process did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
