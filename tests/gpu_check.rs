//! `scripts/gpu-check.sh` on a machine with no driver, with a fake `nvidia-smi` on PATH (what a
//! device that is not there looks like): it must end within a minute, write stage 1's files into
//! `$OUT`, and say in one line why CUDA is unavailable. The first GPU run must not be the first
//! run of the script.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn gpu_check_dry_run_writes_stage_one_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-bin");
    std::fs::create_dir(&fake).unwrap();
    let smi = fake.join("nvidia-smi");
    std::fs::write(
        &smi,
        "#!/bin/sh\ncase \"$*\" in *query-gpu*) echo 'name, driver_version, memory.total [MiB], \
         clocks.max.memory [MHz]'; echo 'NVIDIA H200, 580.65.06, 143771 MiB, 3201 MHz';; \
         *) echo '| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0 |';; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    let bin = Path::new(env!("CARGO_BIN_EXE_aldfit")).parent().unwrap();
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start = Instant::now();
    let o = Command::new("bash")
        .arg("scripts/gpu-check.sh")
        .arg(bin)
        .env("PATH", path)
        .env("OUT", &out)
        .env("ALDFIT_STAGE_TIMEOUT", "50")
        // No NVRTC or driver is to be found, whatever this machine has installed.
        .env("LD_LIBRARY_PATH", "")
        .env_remove("ALDFIT_CUDA_ROOT")
        .output()
        .unwrap();
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(took < Duration::from_secs(60), "took {took:?}: {stdout}");
    assert!(
        !o.status.success(),
        "a machine without CUDA passed: {stdout}"
    );
    let device = std::fs::read_to_string(out.join("stage1-device.txt")).unwrap();
    assert!(
        device.contains("NVIDIA H200") && device.contains("CUDA Version: 13.0"),
        "{device}"
    );
    let validate = std::fs::read_to_string(out.join("stage1-validate-cuda.txt")).unwrap();
    assert!(validate.contains("cuda"), "{validate}");
    let why: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("CUDA unavailable"))
        .collect();
    assert_eq!(why.len(), 1, "{stdout}");
    assert!(
        why[0].contains("not available") || why[0].contains("error"),
        "{}",
        why[0]
    );
    let stages = std::fs::read_to_string(out.join("stages.txt")).unwrap();
    assert!(stages.starts_with("stage 1: FAIL"), "{stages}");
    assert!(out.join("stage1-validate-wgpu.txt").exists());
}
