//! The unit files under `systemd/`: `systemd-analyze verify` accepts them, the system units
//! keep an exposure score of at most 2.0 in `systemd-analyze security`, they say what the
//! daemon relies on, and the Debian package metadata names only files that exist. Then the
//! package itself: `cargo deb` packs this test build, and what it installs (files, man page,
//! completions, units that verify, a binary that runs as an unprivileged user) is checked in
//! a throwaway root. Packing takes about half a minute (xz of a debug binary), so it is done
//! once, in one test.
//!
//! `verify` insists that `ExecStart=` names an existing executable, and `/usr/bin/imapsort` is
//! not installed here: each unit is checked as a temporary copy pointing at the test build of
//! the binary. `--man=no` skips looking up `man:imapsort(1)`, which is not installed either.
//! Without `systemd-analyze` the checks skip loudly, except in CI (`CI` set), where `.ci/run`
//! installs it and a skip would hide a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_imapsort");

struct Unit {
    /// Path under `systemd/`.
    source: &'static str,
    /// Name the temporary copy gets (a template is verified as an instance).
    name: &'static str,
    user: bool,
}

const UNITS: &[Unit] = &[
    Unit {
        source: "imapsort.service",
        name: "imapsort.service",
        user: false,
    },
    Unit {
        source: "imapsort@.service",
        name: "imapsort@0.service",
        user: false,
    },
    Unit {
        source: "user/imapsort.service",
        name: "imapsort.service",
        user: true,
    },
];

fn have_systemd_analyze() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing in CI; .ci/run should install the systemd package"
        );
        eprintln!("\n*** SKIPPING: systemd-analyze not installed (apt-get install systemd) ***\n");
    }
    found
}

/// A copy of the unit in a fresh directory, ExecStart pointing at the test binary.
fn staged(unit: &Unit) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(Path::new(ROOT).join("systemd").join(unit.source)).unwrap();
    staged_text(unit, &text, BIN)
}

/// `text` as the unit, in a fresh directory, with ExecStart's `/usr/bin/imapsort` replaced by
/// `binary`.
fn staged_text(unit: &Unit, text: &str, binary: &str) -> (tempfile::TempDir, PathBuf) {
    assert!(
        text.contains("/usr/bin/imapsort"),
        "{}: ExecStart moved?",
        unit.source
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(unit.name);
    std::fs::write(&path, text.replace("/usr/bin/imapsort", binary)).unwrap();
    (dir, path)
}

fn analyze(unit: &Unit, args: &[&str], path: &Path) -> Output {
    let runtime = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if unit.user {
        // The user manager wants a runtime directory even offline.
        cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
    }
    cmd.args(args).arg(path).output().unwrap()
}

#[test]
fn systemd_analyze_verify_accepts_every_unit_without_warnings() {
    if !have_systemd_analyze() {
        return;
    }
    for unit in UNITS {
        let (_dir, path) = staged(unit);
        verify(unit, &path);
    }
}

/// `systemd-analyze verify` passes without a word.
fn verify(unit: &Unit, path: &Path) {
    let out = analyze(unit, &["verify", "--man=no"], path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: verify failed:\n{stderr}",
        unit.source
    );
    // Unknown or misspelt keys are only warnings; they must not slip through.
    assert!(
        stderr.trim().is_empty(),
        "{}: verify warned:\n{stderr}",
        unit.source
    );
}

#[test]
fn system_units_have_an_exposure_score_of_at_most_2() {
    if !have_systemd_analyze() {
        return;
    }
    for unit in UNITS.iter().filter(|u| !u.user) {
        let (_dir, path) = staged(unit);
        // --threshold is on the 0..100 scale behind the 0.0..10.0 score shown.
        let out = analyze(
            unit,
            &["security", "--offline=yes", "--threshold=20"],
            &path,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let score = stdout
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{}: no score in\n{stdout}", unit.source));
        assert!(
            out.status.success() && score <= 2.0,
            "{}: exposure {score}",
            unit.source
        );
    }
}

#[test]
fn units_say_what_the_daemon_relies_on() {
    // (unit, lines it must hold)
    let common = [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "WatchdogSec=60s",
        "RestartPreventExitStatus=78",
        "StateDirectory=imapsort",
    ];
    let system = [
        "ExecStart=/usr/bin/imapsort run -c /etc/imapsort/config.yaml",
        "DynamicUser=yes",
        "ConfigurationDirectory=imapsort",
        "LoadCredential=imapsort:/etc/imapsort/credentials",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
    ];
    // A shard of the one configuration: N from shards.env, its own state directory.
    let template = [
        "EnvironmentFile=/etc/imapsort/shards.env",
        "EnvironmentFile=-/etc/imapsort/shard-%i.env",
        "ExecStart=/usr/bin/imapsort run -c /etc/imapsort/config.yaml --shard %i/${IMAPSORT_SHARDS}",
        "RestartPreventExitStatus=78 2",
        "StateDirectory=imapsort/shard-%i",
        "LoadCredential=imapsort:/etc/imapsort/credentials",
        "DynamicUser=yes",
    ];
    let user = ["ExecStart=/usr/bin/imapsort run", "WantedBy=default.target"];
    let cases: [(&str, &[&str]); 3] = [
        ("imapsort.service", &system),
        ("imapsort@.service", &template),
        ("user/imapsort.service", &user),
    ];
    for (source, wanted) in cases {
        let text = std::fs::read_to_string(Path::new(ROOT).join("systemd").join(source)).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let wanted = wanted.iter().chain(if source == "imapsort@.service" {
            &common[..4]
        } else {
            &common[..]
        });
        for line in wanted {
            assert!(lines.contains(line), "{source}: missing `{line}`");
        }
    }
}

#[test]
fn debian_package_assets_exist() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "imapsort")
        .unwrap();
    let assets = package["metadata"]["deb"]["assets"]
        .as_array()
        .expect("deb assets");
    let mut targets = Vec::new();
    for asset in assets {
        let source = asset[0].as_str().unwrap();
        targets.push(asset[1].as_str().unwrap().to_owned());
        if source.starts_with("target/") {
            continue; // built by `cargo deb`
        }
        let exists = Path::new(ROOT).join(source).exists();
        if !exists && source == "rules.example.yaml" && std::env::var_os("CI").is_none() {
            // Written by another part of the project; CI insists on it.
            eprintln!("\n*** deb asset rules.example.yaml not written yet ***\n");
            continue;
        }
        assert!(exists, "deb asset {source} missing");
    }
    for wanted in [
        "usr/bin/",
        "usr/lib/systemd/system/",
        "usr/lib/systemd/user/",
        "usr/share/man/man1/",
        "usr/share/doc/imapsort/",
    ] {
        assert!(
            targets.iter().any(|t| t.starts_with(wanted)),
            "nothing installed to {wanted}"
        );
    }
}

/// The template's ExecStart, with systemd's `%i` and `${IMAPSORT_SHARDS}` filled in, is a
/// command line imapsort takes: instance `1` of `3` gets as far as reading the configuration
/// (here: none, so 78), and an instance name that is not a shard is a usage error (2), which
/// the unit does not restart.
#[test]
fn the_template_runs_shard_i_of_n() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("systemd/imapsort@.service")).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/imapsort "))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("config.yaml");
    for (instance, shards, exit) in [
        ("1", "3", 78),
        ("0", "1", 78),
        ("3", "3", 2),
        ("web", "3", 2),
    ] {
        let line = exec
            .replace("%i", instance)
            .replace("${IMAPSORT_SHARDS}", shards)
            .replace("/etc/imapsort/config.yaml", missing.to_str().unwrap());
        let out = Command::new(BIN)
            .args(line.split_whitespace())
            .env_remove("IMAPSORT_METRICS_LISTEN")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(exit),
            "imapsort {line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The package as `cargo deb` makes it from this test build (`--no-build`: the binary the
/// tests already built, in its profile, so CI pays for no release build), unpacked with
/// `dpkg-deb -x` into a throwaway root. `None` (skipped loudly) without cargo-deb outside CI.
fn unpacked_package() -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let cargo = env!("CARGO");
    let have = Command::new(cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-deb is missing in CI; .ci/run should install it"
        );
        eprintln!(
            "\n*** SKIPPING: cargo-deb not installed (cargo install cargo-deb --locked) ***\n"
        );
        return None;
    }
    // target/<dir>/imapsort: the profile the tests were built with.
    let profile = match Path::new(BIN).parent().and_then(|d| d.file_name()) {
        Some(d) if d == "release" => "release",
        _ => "dev",
    };
    // On tmpfs when there is one: the package holds a debug build (about 200 MB unpacked).
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out_dir = dir.path().join("out");
    let out = output_within(
        Command::new(cargo)
            .args([
                "deb",
                "--no-build",
                "--no-strip",
                "--fast",
                "--profile",
                profile,
                "-o",
            ])
            .arg(&out_dir)
            .current_dir(ROOT),
        std::time::Duration::from_secs(600),
    );
    assert!(
        out.status.success(),
        "cargo deb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let root = dir.path().join("root");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg-deb -x: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((dir, deb, root))
}

/// Run `cmd` to the end, killing it (and failing) after `limit`.
fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

#[test]
fn the_debian_package_installs_its_files_man_page_completions_and_units() {
    let Some((dir, deb, root)) = unpacked_package() else {
        return;
    };
    // Control fields.
    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(field("Package"), "imapsort");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert_eq!(field("Section"), "mail");
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));
    // Files under /etc are conffiles: an upgrade keeps local changes.
    let control = root.parent().unwrap().join("control");
    assert!(
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(&control)
            .status()
            .unwrap()
            .success()
    );
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/imapsort/credentials/README"),
        "{conffiles}"
    );

    for file in [
        "usr/bin/imapsort",
        "usr/lib/systemd/system/imapsort.service",
        "usr/lib/systemd/system/imapsort@.service",
        "usr/lib/systemd/user/imapsort.service",
        "etc/imapsort/credentials/README",
        "usr/share/doc/imapsort/README.md",
        "usr/share/doc/imapsort/deploy.md",
        "usr/share/doc/imapsort/copyright",
        "usr/share/doc/imapsort/examples/shards.env",
    ] {
        assert!(root.join(file).is_file(), "{file} not installed");
    }
    let installed = root.join("usr/bin/imapsort");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        installed.metadata().unwrap().permissions().mode() & 0o777,
        0o755
    );
    let run = |args: &[&str]| {
        let out = Command::new(&installed).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "imapsort {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    assert_eq!(
        String::from_utf8(run(&["--version"])).unwrap().trim(),
        format!("imapsort {}", env!("CARGO_PKG_VERSION"))
    );

    // The man page (compressed, as Debian wants) is what the binary prints.
    let man = Command::new("gzip")
        .arg("-dc")
        .arg(root.join("usr/share/man/man1/imapsort.1.gz"))
        .output()
        .unwrap();
    assert!(man.status.success());
    assert_eq!(man.stdout, run(&["man"]), "the packaged man page is stale");
    // The completions, where each shell looks for them.
    for (shell, file) in [
        ("bash", "usr/share/bash-completion/completions/imapsort"),
        ("zsh", "usr/share/zsh/vendor-completions/_imapsort"),
        ("fish", "usr/share/fish/vendor_completions.d/imapsort.fish"),
    ] {
        let packaged = std::fs::read(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(packaged, run(&["completions", shell]), "{file} is stale");
    }

    // The installed units verify, with the installed binary.
    if have_systemd_analyze() {
        for unit in UNITS {
            let dir = if unit.user {
                "usr/lib/systemd/user"
            } else {
                "usr/lib/systemd/system"
            };
            let file = root.join(dir).join(unit.source.trim_start_matches("user/"));
            let text = std::fs::read_to_string(&file).unwrap();
            let (_staging, path) = staged_text(unit, &text, installed.to_str().unwrap());
            verify(unit, &path);
        }
    }
    runs_as_an_unprivileged_user(dir.path(), &root);
}

/// What the container image (deploy/Containerfile) relies on: the packaged binary runs as user
/// 65532, reading its configuration from `IMAPSORT_CONFIG` and its state from a directory of
/// that user (`STATE_DIRECTORY`).
fn runs_as_an_unprivileged_user(dir: &Path, root: &Path) {
    if !nix_is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the tests as root"
        );
        eprintln!("\n*** SKIPPING the unprivileged run: switching to user 65532 needs root ***\n");
        return;
    }
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65532), Some(65532)).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "accounts:\n  - { name: a, host: imap.example.com, username: u, password: { env: P } }\nrules:\n  - { name: r, when: true, then: mark_read }\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [vec!["check"], vec!["status", "--format", "json"]] {
        let out = Command::new("setpriv")
            .args(["--reuid=65532", "--regid=65532", "--clear-groups", "--"])
            .arg(root.join("usr/bin/imapsort"))
            .args(&args)
            .env("IMAPSORT_CONFIG", &config)
            .env("STATE_DIRECTORY", &state)
            .env_remove("HOME")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "imapsort {args:?} as 65532: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if args[0] == "status" {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["state_dir"], state.to_str().unwrap());
        }
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
