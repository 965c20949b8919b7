//! `protonctl logs`: the last lines of a log file, and following it like `tail -F`.

use crate::{Fail, Res};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// How often `--follow` looks at the file.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// Bytes read per step when scanning backwards for line starts.
const CHUNK: u64 = 64 * 1024;

/// Prints the last `n` lines of `path`; with `follow`, then keeps printing what is appended,
/// reopening the file when it is replaced (rotation) or truncated, until interrupted.
pub fn print(path: &Path, n: usize, follow: bool) -> Res<()> {
    let mut out = io::stdout();
    let mut file = match File::open(path) {
        Ok(f) => Some(f),
        Err(e) if follow && e.kind() == io::ErrorKind::NotFound => {
            eprintln!(
                "protonctl: {} does not exist yet; waiting for it",
                path.display()
            );
            None
        }
        Err(e) => return Err(Fail::new(format!("{}: {e}", path.display()))),
    };
    let mut pos = 0;
    if let Some(f) = file.as_mut() {
        let (start, end) =
            tail_start(f, n).map_err(|e| Fail::new(format!("{}: {e}", path.display())))?;
        if copy_range(f, start, end, &mut out).is_err() {
            return Ok(()); // stdout closed
        }
        pos = end;
    }
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        let on_disk = std::fs::metadata(path).ok();
        if let Some(f) = file.as_mut() {
            let len = f.metadata().map_or(pos, |m| m.len());
            if len < pos {
                eprintln!("protonctl: {} was truncated", path.display());
                pos = 0;
            }
            // Drain the open file first: after a rename the server writes to it until it
            // reopens its logs.
            match copy_range(f, pos, len.max(pos), &mut out) {
                Ok(()) => pos = len.max(pos),
                Err(_) => return Ok(()),
            }
            let ino = f.metadata().map(|m| m.ino()).ok();
            let replaced = on_disk.as_ref().is_some_and(|m| Some(m.ino()) != ino);
            if !replaced {
                continue;
            }
            eprintln!(
                "protonctl: {} was replaced; following the new file",
                path.display()
            );
        }
        if on_disk.is_some() {
            if let Ok(f) = File::open(path) {
                file = Some(f);
                pos = 0;
            }
        }
    }
}

/// The byte range holding the last `n` lines of `f`: `(start, end)` with `end` its length.
/// A final newline ends the last line rather than starting an empty one.
pub fn tail_start(f: &mut File, n: usize) -> io::Result<(u64, u64)> {
    let len = f.metadata()?.len();
    if n == 0 {
        return Ok((len, len));
    }
    let mut buf = vec![0u8; CHUNK as usize];
    let mut pos = len;
    let mut seen = 0;
    while pos > 0 {
        let step = CHUNK.min(pos);
        pos -= step;
        let chunk = &mut buf[..step as usize];
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(chunk)?;
        for (i, &b) in chunk.iter().enumerate().rev() {
            let at = pos + i as u64;
            if b == b'\n' && at + 1 != len {
                seen += 1;
                if seen == n {
                    return Ok((at + 1, len));
                }
            }
        }
    }
    Ok((0, len))
}

/// Copies bytes `start..end` of `f` to `out`. An error means `out` is gone (or `f` unreadable).
fn copy_range(f: &mut File, start: u64, end: u64, out: &mut impl Write) -> io::Result<()> {
    if end <= start {
        return Ok(());
    }
    f.seek(SeekFrom::Start(start))?;
    io::copy(&mut f.take(end - start), out)?;
    out.flush()
}

/// What was appended to `path` after byte `offset` (all of it when the file shrank, i.e. was
/// rotated), at most its last `max_lines` lines; else the file's last `max_lines` lines.
pub fn lines_since(path: &Path, offset: u64, max_lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let Ok((tail, len)) = tail_start(&mut f, max_lines) else {
        return String::new();
    };
    // Nothing new (or a rotated file): the last lines are the best clue.
    let start = if offset < len { offset.max(tail) } else { tail };
    let mut out = Vec::new();
    let _ = copy_range(&mut f, start, len, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(content: &str, n: usize) -> String {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(content.as_bytes()).expect("write");
        let (start, end) = tail_start(&mut f, n).expect("tail");
        let mut out = Vec::new();
        copy_range(&mut f, start, end, &mut out).expect("copy");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn tails() {
        assert_eq!(tail_of("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_of("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_of("a\nb\nc\n", 10), "a\nb\nc\n");
        assert_eq!(tail_of("a\nb\nc\n", 0), "");
        assert_eq!(tail_of("", 3), "");
        assert_eq!(tail_of("\n\n\n", 2), "\n\n");
        let long: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail_of(&long, 3), "line 99997\nline 99998\nline 99999\n");
    }
}
