//! Live boxes: stdin written while the program runs, output handed over as it is
//! read, signals that reach the program, and a cancel that ends the box.

mod support;

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use runbox_sandbox::{BoxConfig, LiveIo, Signaller, Status, Stream};
use support::{LiveBox, attack, limits, sandbox, shell_box};

#[test]
fn an_interactive_program_answers_each_line_as_it_is_written() {
    let mut live = LiveBox::start(shell_box(
        "while read line; do echo \"got $line\"; done; echo bye",
    ));
    live.write("one\n");
    live.expect(Stream::Stdout, "got one\n");
    live.write("two\n");
    live.expect(Stream::Stdout, "got two\n");
    let outcome = live.finish();
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(outcome.stdout, b"got one\ngot two\nbye\n");
}

#[test]
fn sigint_reaches_a_program_that_traps_it() {
    let live = LiveBox::start(shell_box(
        "trap 'echo caught INT; exit 3' INT; echo ready; while :; do sleep 0.05; done",
    ));
    live.expect(Stream::Stdout, "ready\n");
    assert!(live.signals.send(libc::SIGINT).unwrap());
    let outcome = live.finish();
    assert_eq!(outcome.exit_code, Some(3), "{outcome:?}");
    assert_eq!(outcome.stdout, b"ready\ncaught INT\n");
}

#[test]
fn sigint_ends_a_program_that_does_not_handle_it() {
    let live = LiveBox::start(shell_box("echo ready; exec sleep 30"));
    live.expect(Stream::Stdout, "ready\n");
    let sent = Instant::now();
    assert!(live.signals.send(libc::SIGINT).unwrap());
    let outcome = live.finish();
    assert_eq!(outcome.status, Status::RuntimeError, "{outcome:?}");
    assert_eq!(outcome.signal.as_deref(), Some("SIGINT"));
    assert!(sent.elapsed() < Duration::from_secs(5), "{outcome:?}");
}

#[test]
fn a_signal_sent_while_the_box_starts_waits_for_the_program() {
    // Sent as soon as the box is attached, before the init has started the
    // program: the carrier is queued, and the program still gets it.
    let signals = Signaller::new();
    let sender = signals.clone();
    let hammer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sender.send(libc::SIGTERM).unwrap() {
            assert!(Instant::now() < deadline, "the box was never attached");
            std::hint::spin_loop();
        }
    });
    let (reader, _writer) = std::io::pipe().unwrap();
    let outcome = sandbox()
        .run_live(
            &shell_box("exec sleep 30"),
            LiveIo {
                stdin: Some(OwnedFd::from(reader)),
                stdout: None,
                output: None,
                signals: Some(&signals),
                terminal: None,
            },
        )
        .unwrap();
    hammer.join().unwrap();
    assert_eq!(outcome.signal.as_deref(), Some("SIGTERM"), "{outcome:?}");
    assert!(outcome.wall_time < Duration::from_secs(5), "{outcome:?}");
}

#[test]
fn a_signal_after_the_box_has_ended_is_not_delivered() {
    let live = LiveBox::start(shell_box("true"));
    let signals = live.signals.clone();
    let outcome = live.finish();
    assert_eq!(outcome.status, Status::Ok);
    assert!(!signals.send(libc::SIGINT).unwrap());
}

#[test]
fn cancel_kills_the_box_at_once() {
    let live = LiveBox::start(shell_box("echo ready; sleep 30"));
    live.expect(Stream::Stdout, "ready\n");
    live.signals.cancel();
    let outcome = live.finish();
    assert_ne!(outcome.status, Status::Ok, "{outcome:?}");
    assert!(outcome.wall_time < Duration::from_secs(5), "{outcome:?}");
}

#[test]
fn output_is_handed_over_in_the_order_it_was_written() {
    let live = LiveBox::start(shell_box(
        "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2",
    ));
    let outcome = live.finish();
    assert_eq!(outcome.interleaved(), b"out1\nerr1\nout2\n");
    assert_eq!(outcome.stdout, b"out1\nout2\n");
    assert_eq!(outcome.stderr, b"err1\n");
}

#[test]
fn merged_stderr_keeps_the_exact_order_of_writes() {
    let outcome =
        support::run(&shell_box("echo 1; echo 2 >&2; echo 3; echo 4 >&2").with_stderr_to_stdout());
    assert_eq!(outcome.status, Status::Ok);
    assert_eq!(outcome.stdout, b"1\n2\n3\n4\n");
    assert_eq!(outcome.stderr, b"");
}

/// Tries to use the forwarding path from inside: queue the carrier signal (and
/// plain ones) to the init, asking it to kill the whole box.
const SIGNAL_THE_INIT: &str = r#"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    union sigval value = { .sival_int = SIGKILL };
    int carrier = SIGRTMIN + 1;
    int queued = sigqueue(1, carrier, value);
    printf("sigqueue(1): %s\n", queued == 0 ? "sent" : strerror(errno));
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) sigqueue(1, sig, value);
    int killed = kill(1, SIGINT);
    printf("kill(1): %s\n", killed == 0 ? "sent" : strerror(errno));
    usleep(100000);
    printf("alive\n");
    return 0;
}
"#;

#[test]
fn the_program_cannot_make_the_init_forward_signals() {
    let signals = Signaller::new();
    let outcome = sandbox()
        .run_live(
            &attack("signal_the_init", SIGNAL_THE_INIT, &[]),
            LiveIo {
                signals: Some(&signals),
                ..LiveIo::default()
            },
        )
        .unwrap();
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "sigqueue(1): Operation not permitted\nkill(1): Operation not permitted\nalive\n"
    );
}

#[test]
fn endless_output_in_a_live_box_stops_at_the_output_limit() {
    let config = shell_box("yes flood").with_limits(limits(|l| {
        l.output_bytes = 64 << 10;
        l.wall_time = Duration::from_secs(10);
    }));
    let live = LiveBox::start(config);
    let outcome = live.done.join().unwrap();
    let handed: usize = live.output.try_iter().map(|(_, data)| data.len()).sum();
    assert_eq!(outcome.status, Status::OutputLimitExceeded, "{outcome:?}");
    // What the caller was handed is what was kept: never more than the limit.
    assert_eq!(handed, outcome.stdout.len());
    assert!(handed <= 64 << 10, "{handed} bytes handed over");
}

#[test]
fn a_sink_that_waits_holds_the_program_back_until_its_wall_limit() {
    // Up to 1 GiB may be kept: only the sink's waiting keeps the output small.
    let config = shell_box("yes flood").with_limits(limits(|l| {
        l.output_bytes = 1 << 30;
        l.wall_time = Duration::from_secs(2);
    }));
    let mut largest = 0;
    let mut deadlines = Vec::new();
    // A caller whose reader never reads: it waits as long as it may.
    let mut never_read = |_: Stream, data: &[u8], deadline: Instant| {
        largest = largest.max(data.len());
        deadlines.push(deadline);
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    };
    let started = Instant::now();
    let outcome = sandbox()
        .run_live(
            &config,
            LiveIo {
                output: Some(&mut never_read),
                ..LiveIo::default()
            },
        )
        .unwrap();
    assert_eq!(
        outcome.status,
        Status::TimeLimitExceeded,
        "{:?}",
        outcome.limit_hit
    );
    assert!(started.elapsed() < Duration::from_secs(4), "{outcome:?}");
    // One read at a time, and the program held back for 2 s: free, it writes
    // hundreds of MB a second. What is kept is the first chunk, the full pipe,
    // and what the program wrote while it was being killed.
    assert!(largest <= 64 << 10, "a chunk of {largest} bytes");
    assert!(
        outcome.stdout.len() <= 4 << 20,
        "the program was not held back: {} bytes kept",
        outcome.stdout.len()
    );
    // The deadline handed over is the box's wall deadline.
    let first = deadlines[0];
    assert!(
        first > started + Duration::from_millis(1900) && first < started + Duration::from_secs(3)
    );
}

// ---- two boxes joined by pipes ----

fn quick(script: &str, wall: Duration) -> BoxConfig {
    BoxConfig::new(["/bin/sh", "-c", script]).with_limits(limits(|l| l.wall_time = wall))
}

#[test]
fn two_boxes_joined_by_pipes_talk_both_ways() {
    // The first asks, the second answers: each one's stdout is the other's stdin.
    let asker = quick(
        "echo 2 3; read sum; echo \"asked 2 3, told $sum\" >&2",
        Duration::from_secs(10),
    );
    let adder = quick(
        "read a b; echo $((a + b)); echo added >&2",
        Duration::from_secs(10),
    );
    let (first, second) = sandbox().run_pair(&asker, &adder).unwrap();
    assert_eq!(first.status, Status::Ok, "{first:?}");
    assert_eq!(second.status, Status::Ok, "{second:?}");
    assert_eq!(
        String::from_utf8_lossy(&first.stderr),
        "asked 2 3, told 5\n"
    );
    assert_eq!(String::from_utf8_lossy(&second.stderr), "added\n");
    assert!(first.stdout.is_empty() && second.stdout.is_empty());
}

#[test]
fn a_box_whose_partner_ends_reads_the_end_of_its_input_at_once() {
    let waiter = quick(
        "if read line; then echo \"read $line\" >&2; else echo eof >&2; fi",
        Duration::from_secs(20),
    );
    let (first, second) = sandbox()
        .run_pair(&waiter, &quick("exit 0", Duration::from_secs(20)))
        .unwrap();
    assert_eq!(second.status, Status::Ok);
    assert_eq!(String::from_utf8_lossy(&first.stderr), "eof\n");
    assert!(first.wall_time < Duration::from_secs(5), "{first:?}");
}

#[test]
fn a_partner_that_never_answers_is_ended_by_its_own_wall_time() {
    // Both read first: neither writes, so each waits until its wall time ends.
    let started = Instant::now();
    let (first, second) = sandbox()
        .run_pair(
            &quick("read line", Duration::from_millis(500)),
            &quick("read line", Duration::from_millis(800)),
        )
        .unwrap();
    assert_eq!(first.status, Status::TimeLimitExceeded, "{first:?}");
    // The first's end closed the second's input: it reads the end at once.
    assert!(second.wall_time < Duration::from_millis(800), "{second:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
