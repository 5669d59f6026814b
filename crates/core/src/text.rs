//! Text from plugins (logs, error messages) made safe to print on a terminal.
//!
//! A plugin controls its stderr and, through it, the messages of its failures. Printed raw,
//! escape sequences in them could retitle the window, write the clipboard (OSC 52), clear the
//! screen, hide text or plant hyperlinks, and bidirectional overrides could make text read
//! differently than it is. [`printable`] shows every such character as a visible escape instead.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: control characters other than newline and
/// tab (C0, DEL, C1: ESC starts every escape sequence), and the bidirectional formatting marks.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character replaced by a visible escape such as `\x1b` or `\u{202e}`.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escape_sequences_and_bidi_marks_become_visible() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(printable("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
        assert_eq!(printable("\x1b]52;c;aGk=\x1b\\"), "\\x1b]52;c;aGk=\\x1b\\");
        assert_eq!(printable("a\u{202e}cba"), "a\\u{202e}cba");
        assert_eq!(printable("\u{9b}2J"), "\\x9b2J");
        assert_eq!(printable("\r\x7f"), "\\x0d\\x7f");
        assert_eq!(printable("ünïcödé ok"), "ünïcödé ok");
    }
}
