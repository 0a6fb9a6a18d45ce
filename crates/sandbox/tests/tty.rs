//! TTY mode: the program on a pseudo-terminal of its box's own — a terminal to
//! it (isatty, line discipline, Ctrl-C, window size), and still nothing of the
//! host's terminals within reach.

mod support;

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use runbox_sandbox::{BoxConfig, Outcome, Status, Stream, Terminal, TerminalSize};
use support::{LiveBox, attack, shell_box};

/// A TTY-mode box on its own thread: what is written is typed into its
/// terminal, and what the terminal shows arrives as stdout chunks.
struct TtyBox {
    live: LiveBox,
    seen: Vec<u8>,
    terminal: Terminal,
}

impl TtyBox {
    fn start(config: BoxConfig) -> TtyBox {
        let terminal = Terminal::new();
        let live = LiveBox::start_on(
            config.with_tty(TerminalSize::default()),
            Some(terminal.clone()),
        );
        TtyBox {
            live,
            seen: Vec::new(),
            terminal,
        }
    }

    /// Waits until the terminal has shown `wanted` (after what earlier calls saw).
    fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if let Some(at) = text.find(wanted) {
                self.seen.drain(..at + wanted.len());
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.live.output.recv_timeout(left) {
                Ok((Stream::Stdout, data)) => self.seen.extend_from_slice(&data),
                Ok((Stream::Stderr, data)) => panic!("stderr on a terminal: {data:?}"),
                Err(e) => panic!("no {wanted:?} on the terminal ({e}); got {text:?}"),
            }
        }
    }

    fn type_in(&mut self, text: &str) {
        self.live.write(text);
    }

    fn finish(self) -> Outcome {
        self.live.finish()
    }
}

#[test]
fn the_program_runs_on_a_terminal_of_the_box_with_a_window_size() {
    let outcome = support::run(
        &shell_box("test -t 0 && test -t 1 && test -t 2 && echo all three; tty; stty size")
            .with_tty(TerminalSize {
                rows: 30,
                cols: 100,
            }),
    );
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    // The line discipline turns each newline into CR LF.
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "all three\r\n/dev/pts/0\r\n30 100\r\n"
    );
    assert!(outcome.stderr.is_empty());
}

#[test]
fn typed_input_is_echoed_and_read_line_by_line() {
    let mut tty = TtyBox::start(shell_box(
        "printf 'name? '; read name; echo \"hello, $name\"",
    ));
    tty.expect("name? ");
    tty.type_in("Ada\r");
    tty.expect("Ada\r\nhello, Ada\r\n");
    let outcome = tty.finish();
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
}

#[test]
fn ctrl_c_typed_into_the_terminal_interrupts_the_foreground_group() {
    let mut tty = TtyBox::start(shell_box(
        "trap 'echo caught INT; exit 3' INT; echo ready; while :; do sleep 0.05; done",
    ));
    tty.expect("ready\r\n");
    let typed = Instant::now();
    tty.type_in("\x03");
    let outcome = tty.finish();
    assert_eq!(outcome.exit_code, Some(3), "{outcome:?}");
    assert!(String::from_utf8_lossy(&outcome.stdout).contains("caught INT"));
    assert!(typed.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_resize_reaches_the_program_as_its_new_window_size() {
    let mut tty = TtyBox::start(shell_box(
        "trap 'echo winch' WINCH; echo ready; read line; stty size",
    ));
    tty.expect("ready\r\n");
    let rows_cols = TerminalSize {
        rows: 40,
        cols: 120,
    };
    assert!(tty.terminal.resize(rows_cols).unwrap());
    tty.type_in("\r");
    tty.expect("40 120\r\n");
    let terminal = tty.terminal.clone();
    let outcome = tty.finish();
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    // Detached once the box is gone.
    assert!(!terminal.resize(rows_cols).unwrap());
}

#[test]
fn the_end_of_stdin_is_end_of_input_on_the_terminal() {
    let mut tty = TtyBox::start(shell_box("cat; echo done"));
    tty.type_in("line\r");
    tty.expect("line\r\nline\r\n");
    let outcome = tty.finish();
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert!(String::from_utf8_lossy(&outcome.stdout).ends_with("done\r\n"));
}

#[test]
fn configured_stdin_bytes_are_typed_into_the_terminal() {
    let outcome = support::run(
        &shell_box("read a; echo \"got $a\"")
            .with_stdin("42\n")
            .with_tty(TerminalSize::default()),
    );
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert!(String::from_utf8_lossy(&outcome.stdout).ends_with("got 42\r\n"));
}

/// Pushes a byte into the box's own terminal with TIOCSTI and a console request
/// with TIOCLINUX: both refused by the seccomp filter though the terminal is the
/// program's controlling one.
const INJECT_INTO_OWN_TERMINAL: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
int main(void) {
    char byte = 'x';
    int sti = ioctl(0, TIOCSTI, &byte);
    printf("isatty: %d\n", isatty(0));
    printf("TIOCSTI: %s\n", sti == 0 ? "injected" : strerror(errno));
    char subcode = 0;
    int linux_ioctl = ioctl(0, TIOCLINUX, &subcode);
    printf("TIOCLINUX: %s\n", linux_ioctl == 0 ? "done" : strerror(errno));
    return 0;
}
"#;

#[test]
fn tiocsti_and_tioclinux_on_the_boxs_own_terminal_are_refused() {
    let outcome = support::run(
        &attack("inject_own_terminal", INJECT_INTO_OWN_TERMINAL, &[])
            .with_tty(TerminalSize::default()),
    );
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "isatty: 1\r\nTIOCSTI: Operation not permitted\r\nTIOCLINUX: Operation not permitted\r\n"
    );
}

#[test]
fn the_boxs_dev_pts_holds_only_its_own_terminal() {
    // The host has terminals of its own (the test opens one to be sure).
    let (_host_master, _host_slave) = host_pty();
    let outcome =
        support::run(&shell_box("ls -a /dev/pts | tr '\\n' ' '").with_tty(TerminalSize::default()));
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(String::from_utf8_lossy(&outcome.stdout), ". .. 0 ptmx ");
}

#[test]
fn a_box_without_a_terminal_has_no_terminal_to_open() {
    // Opened by a process with a controlling terminal, /dev/tty would be it; the
    // program has none (ENXIO), and /dev/ptmx leads to no devpts (ENOENT).
    let script = "ls -a /dev/pts | tr '\\n' ' '; echo; \
        for f in /dev/tty /dev/ptmx; do (: <$f) 2>&1 | sed 's/.*: //'; done";
    let outcome = support::run(&shell_box(script));
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        ". .. \nNo such device or address\nNo such file\n"
    );
}

#[test]
fn dev_tty_of_a_tty_box_is_its_own_terminal_not_the_hosts() {
    // /dev/tty opens the caller's controlling terminal: what is written there
    // shows on the box's terminal, which the supervisor reads.
    let outcome = support::run(
        &shell_box("echo through /dev/tty >/dev/tty; readlink /proc/self/fd/0")
            .with_tty(TerminalSize::default()),
    );
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "through /dev/tty\r\n/dev/pts/0\r\n"
    );
}

/// A terminal pair of the host's, open for the length of a test.
fn host_pty() -> (OwnedFd, std::fs::File) {
    use rustix::pty;
    let master = pty::openpt(pty::OpenptFlags::RDWR | pty::OpenptFlags::NOCTTY).unwrap();
    pty::grantpt(&master).unwrap();
    pty::unlockpt(&master).unwrap();
    let name = pty::ptsname(&master, Vec::new()).unwrap();
    let name = name.to_str().unwrap().to_owned();
    assert!(name.starts_with("/dev/pts/"), "{name}");
    let slave = std::fs::File::open(&name).unwrap();
    (master, slave)
}
