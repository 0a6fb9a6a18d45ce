//! `runbox run` as people use it at a prompt: inline code, code and input from
//! pipes, and a program that talks to the terminal runbox was started on.
//! The terminal is a pseudo-terminal the test holds (the real binary, real boxes,
//! the host's Python as CI installs it).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::pty;

fn runbox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runbox"));
    command.env_remove("RUNBOX_LANGUAGES_DIR");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn inline_code_runs_with_dash_e() {
    let out = runbox()
        .args(["run", "-q", "-l", "python", "-e", "print(6 * 7)"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "42\n");
}

#[test]
fn inline_code_needs_a_language() {
    let out = runbox()
        .args(["run", "-e", "print(1)"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--language"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn code_comes_from_stdin_with_a_dash() {
    let mut child = runbox()
        .args(["run", "-q", "-l", "python", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"import sys\nprint('from stdin', sys.stdin.read() == '')\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from stdin True\n");
}

#[test]
fn piped_stdin_reaches_the_program_without_a_flag() {
    let mut child = runbox()
        .args([
            "run",
            "-q",
            "-l",
            "python",
            "-e",
            "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"1 2 3\n4\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "10\n");
}

/// runbox started on a pseudo-terminal of the test's: what it shows arrives
/// on a channel, keys are typed into the master.
struct OnTerminal {
    master: std::fs::File,
    shown: mpsc::Receiver<Vec<u8>>,
    seen: String,
    child: std::process::Child,
}

impl OnTerminal {
    fn start(args: &[&str]) -> OnTerminal {
        let master = pty::openpt(pty::OpenptFlags::RDWR | pty::OpenptFlags::NOCTTY).unwrap();
        pty::grantpt(&master).unwrap();
        pty::unlockpt(&master).unwrap();
        let name = pty::ptsname(&master, Vec::new()).unwrap();
        let slave = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(name.to_str().unwrap())
                .unwrap()
        };
        let child = runbox()
            .args(args)
            .stdin(slave())
            .stdout(slave())
            .stderr(slave())
            .spawn()
            .expect("runbox must start");
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (sender, shown) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if sender.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        OnTerminal {
            master,
            shown,
            seen: String::new(),
            child,
        }
    }

    /// Waits until the terminal has shown `wanted`.
    fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.contains(wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&text(&bytes)),
                Err(e) => panic!(
                    "no {wanted:?} on the terminal ({e}); it shows {:?}",
                    self.seen
                ),
            }
        }
        let at = self.seen.find(wanted).unwrap() + wanted.len();
        self.seen.drain(..at);
    }

    fn type_in(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "runbox did not end: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn on_a_terminal_the_prompt_shows_before_the_answer_is_typed() {
    let mut terminal = OnTerminal::start(&[
        "run",
        "-q",
        "-l",
        "python",
        "-e",
        "import sys\nname = input('Your name? ')\nprint('Hello,', name, sys.stdin.isatty())",
    ]);
    terminal.expect("Your name? ");
    terminal.type_in("Ada\r");
    // The box's terminal echoes what is typed, then the program answers.
    terminal.expect("Ada\r\nHello, Ada True\r\n");
    assert!(terminal.wait().success());
}

#[test]
fn on_a_terminal_ctrl_c_interrupts_the_program() {
    let mut terminal = OnTerminal::start(&[
        "run",
        "-q",
        "-l",
        "python",
        "--wall-time-limit",
        "20s",
        "-e",
        "import time\ntry:\n    print('looping', flush=True)\n    while True: time.sleep(0.05)\nexcept KeyboardInterrupt:\n    print('interrupted')\n",
    ]);
    terminal.expect("looping\r\n");
    let typed = Instant::now();
    terminal.type_in("\x03");
    terminal.expect("interrupted\r\n");
    assert!(terminal.wait().success());
    assert!(typed.elapsed() < Duration::from_secs(10));
}
