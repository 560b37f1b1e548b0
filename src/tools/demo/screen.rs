//! Where the demo's summary goes: standard error, redrawn in place when it
//! is a terminal, one compact line per refresh when it is not (CI, pipes,
//! files).
//!
//! On a terminal the view takes the alternate screen, like `top`, and is
//! redrawn from the top-left corner each time, so a log line printed in
//! between is simply painted over at the next refresh. The normal screen
//! comes back when the [`Screen`] is closed or dropped (also on a panic).

use std::io::{IsTerminal, Write};

/// Switch to the alternate screen and hide the cursor.
const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Show the cursor and go back to the normal screen.
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";
/// Cursor to the top-left corner.
const HOME: &str = "\x1b[H";
/// Clear to the end of the line.
const CLEAR_LINE: &str = "\x1b[K";
/// Clear from the cursor to the end of the screen.
const CLEAR_BELOW: &str = "\x1b[J";

/// Standard error as the summary's display.
#[derive(Debug)]
pub struct Screen {
    /// Whether standard error is a terminal (redraw in place).
    live: bool,
    /// Whether the alternate screen is in use.
    entered: bool,
}

impl Screen {
    /// Standard error, live when it is a terminal.
    pub fn stderr() -> Screen {
        Screen {
            live: std::io::stderr().is_terminal(),
            entered: false,
        }
    }

    /// Shows one refresh: `full` redrawn in place on a terminal, else the
    /// `compact` line appended.
    pub fn show(&mut self, full: &str, compact: &str) {
        let text = if self.live {
            let enter = if self.entered { "" } else { ENTER };
            self.entered = true;
            in_place(enter, full)
        } else {
            format!("{compact}\n")
        };
        write_stderr(&text);
    }

    /// Gives the normal screen back, if it was taken.
    pub fn close(&mut self) {
        if self.entered {
            self.entered = false;
            write_stderr(LEAVE);
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.close();
    }
}

/// `frame` drawn over the previous one from the top-left corner.
fn in_place(prefix: &str, frame: &str) -> String {
    let mut text = String::with_capacity(frame.len() + 256);
    text.push_str(prefix);
    text.push_str(HOME);
    for (i, line) in frame.lines().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(line);
        text.push_str(CLEAR_LINE);
    }
    text.push_str(CLEAR_BELOW);
    text
}

/// Writes `text` in one piece; a closed standard error is not worth failing for.
fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_overwrite_every_line_from_the_corner() {
        let text = in_place("", "a\nbb");
        assert_eq!(text, "\x1b[Ha\x1b[K\nbb\x1b[K\x1b[J");
    }
}
