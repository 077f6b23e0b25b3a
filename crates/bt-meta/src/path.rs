//! Turning the path elements a torrent names into local paths that cannot escape the
//! download folder.
//!
//! Policy: every raw element becomes exactly one sanitized element (so `raw_path[i]`
//! and `path[i]` correspond), and a sanitized element is always a single
//! [`std::path::Component::Normal`] on Unix and on Windows:
//!
//! - bytes that are not UTF-8 are replaced (U+FFFD), the raw bytes stay available;
//! - control characters (C0, DEL, C1) and bidirectional-override characters are removed;
//! - `/`, `\` and the characters Windows refuses (`:` `*` `?` `"` `<` `>` `|`) become `_`,
//!   so neither separators nor drive prefixes (`C:`) survive;
//! - trailing dots and spaces are removed (Windows drops them itself, which would merge
//!   names), so `.` and `..` become empty;
//! - an empty element becomes `_`;
//! - Windows reserved device names (`CON`, `NUL`, `COM1`, `LPT9`, ... with or without an
//!   extension, any case) get a `_` prefix;
//! - elements longer than [`MAX_COMPONENT_LEN`] bytes are cut at a character boundary,
//!   keeping a short extension.
//!
//! Sanitizing is idempotent: a sanitized element sanitizes to itself.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

/// Longest path element kept, in bytes (most filesystems allow 255).
pub const MAX_COMPONENT_LEN: usize = 240;

/// Longest extension kept when a long element is cut.
const MAX_KEPT_EXTENSION: usize = 32;

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn is_replaced(c: char) -> bool {
    matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
}

/// Removes control and bidi characters and replaces separators and characters
/// Windows refuses; trims trailing dots and spaces. May return an empty string.
pub(crate) fn clean_component(raw: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(lossy.len());
    for c in lossy.chars() {
        if c.is_control() || is_bidi_control(c) {
            continue;
        }
        out.push(if is_replaced(c) { '_' } else { c });
    }
    trim_trailing(&mut out);
    out
}

fn trim_trailing(s: &mut String) {
    let kept = s.trim_end_matches(['.', ' ']).len();
    s.truncate(kept);
}

fn is_reserved_windows_name(s: &str) -> bool {
    // Every reserved name starts with one of these letters.
    if !matches!(
        s.as_bytes().first(),
        Some(b'c' | b'C' | b'p' | b'P' | b'a' | b'A' | b'n' | b'N' | b'l' | b'L')
    ) {
        return false;
    }
    let stem = s.split('.').next().unwrap_or(s).trim_end_matches(' ');
    let is = |name: &str| stem.eq_ignore_ascii_case(name);
    if ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
        .into_iter()
        .any(is)
    {
        return true;
    }
    match (stem.get(..3), stem.get(3..)) {
        (Some(prefix), Some(rest))
            if prefix.eq_ignore_ascii_case("COM") || prefix.eq_ignore_ascii_case("LPT") =>
        {
            matches!(
                rest,
                "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
            )
        }
        _ => false,
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn shorten(s: String) -> String {
    if s.len() <= MAX_COMPONENT_LEN {
        return s;
    }
    let ext = match s.rfind('.') {
        Some(dot) if dot > 0 && s.len() - dot <= MAX_KEPT_EXTENSION => &s[dot..],
        _ => "",
    };
    let stem_end = floor_char_boundary(&s, MAX_COMPONENT_LEN - ext.len());
    let mut out = String::with_capacity(MAX_COMPONENT_LEN);
    out.push_str(&s[..stem_end]);
    trim_trailing(&mut out);
    out.push_str(ext);
    out
}

/// Sanitizes one path element (see the module docs). Never empty, never `.` or `..`,
/// never contains a separator, at most [`MAX_COMPONENT_LEN`] bytes.
pub fn sanitize_component(raw: &[u8]) -> String {
    let mut s = shorten(clean_component(raw));
    if s.is_empty() {
        s.push('_');
    }
    if is_reserved_windows_name(&s) {
        s.insert(0, '_');
        s = shorten(s);
    }
    s
}

/// `bytes` as text, invalid UTF-8 replaced (U+FFFD) and surrounding whitespace
/// trimmed, in one allocation of the exact size (`String::from_utf8_lossy` grows its
/// buffer, and a trim after it copies again: up to 6 times the input at peak for
/// bytes that are all invalid).
pub(crate) fn lossy_trimmed(bytes: &[u8]) -> String {
    let len = bytes
        .utf8_chunks()
        .map(|c| c.valid().len() + if c.invalid().is_empty() { 0 } else { 3 })
        .sum();
    let mut out = String::with_capacity(len);
    for c in bytes.utf8_chunks() {
        out.push_str(c.valid());
        if !c.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    let end = out.trim_end().len();
    out.truncate(end);
    let start = out.len() - out.trim_start().len();
    out.drain(..start);
    out
}

/// [`sanitize_component`] without a copy when the element is already clean (the
/// common case): borrowed when the raw bytes are their own sanitized form.
pub fn sanitize_component_cow(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) if is_clean(s) => Cow::Borrowed(s),
        _ => Cow::Owned(sanitize_component(raw)),
    }
}

/// Whether `s` is its own sanitized form (see the module docs).
fn is_clean(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_COMPONENT_LEN
        && !s.ends_with(['.', ' '])
        && s.chars()
            .all(|c| !(c.is_control() || is_bidi_control(c) || is_replaced(c)))
        && !is_reserved_windows_name(s)
}

/// Sanitizes every element of a raw path, one for one.
pub fn sanitize_path<B: AsRef<[u8]>>(raw: &[B]) -> Vec<String> {
    raw.iter().map(|c| sanitize_component(c.as_ref())).collect()
}

/// Joins path elements under `base`. Each element is sanitized again (sanitizing is
/// idempotent, so well-formed elements are unchanged), so the result is always `base`
/// followed only by normal components: it cannot name anything outside `base`.
pub fn join_under<S: AsRef<str>>(base: &Path, components: &[S]) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in components {
        let c = sanitize_component(c.as_ref().as_bytes());
        debug_assert!(is_single_normal(&c), "{c:?}");
        out.push(c);
    }
    out
}

/// True if `s` is exactly one normal path component on this platform.
pub(crate) fn is_single_normal(s: &str) -> bool {
    let mut comps = Path::new(s).components();
    matches!(comps.next(), Some(Component::Normal(n)) if n == s) && comps.next().is_none()
}

/// Makes the last element `last` of a sanitized path unique among already used ones
/// (compared case-insensitively, as on Windows and macOS) by renaming it
/// `name.1.ext`, `name.2.ext`, ... like libtorrent. Returns `None` once `budget`
/// (collisions tried, shared across calls) runs out.
pub(crate) fn unique_name(
    last: &str,
    taken: &mut impl FnMut(&str) -> bool,
    budget: &mut u32,
) -> Option<String> {
    let (stem, ext) = match last.rfind('.') {
        Some(dot) if dot > 0 && last.len() - dot <= MAX_KEPT_EXTENSION => {
            (&last[..dot], &last[dot..])
        }
        _ => (last, ""),
    };
    let mut n = 1u32;
    loop {
        let suffix = format!(".{n}{ext}");
        let keep = floor_char_boundary(stem, MAX_COMPONENT_LEN.saturating_sub(suffix.len()));
        let candidate = format!("{}{suffix}", &stem[..keep]);
        if !taken(&candidate) {
            return Some(candidate);
        }
        *budget = budget.checked_sub(1)?;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(raw: &[u8], expected: &str) {
        assert_eq!(sanitize_component(raw), expected, "raw {raw:?}");
        let cow = sanitize_component_cow(raw);
        assert_eq!(cow, expected, "raw {raw:?}");
        assert_eq!(
            matches!(cow, Cow::Borrowed(_)),
            raw == expected.as_bytes(),
            "borrowed exactly when clean: {raw:?}"
        );
    }

    #[test]
    fn components() {
        check(b"plain.txt", "plain.txt");
        check(b"", "_");
        check(b".", "_");
        check(b"..", "_");
        check(b"...", "_");
        check(b"foo/../../../bar", "foo_.._.._.._bar");
        check(b"/etc/passwd", "_etc_passwd");
        check(b"\\\\server\\share", "__server_share");
        check(b"C:", "C_");
        check(b"C:\\Windows", "C__Windows");
        check(b"a\x00b\x1fc\x7f", "abc");
        check("evil\u{202E}txt.exe".as_bytes(), "eviltxt.exe");
        check("\u{2066}x\u{2069}".as_bytes(), "x");
        check(b"name. . ", "name");
        check(b"CON", "_CON");
        check(b"con.txt", "_con.txt");
        check(b"Nul", "_Nul");
        check(b"COM1.log", "_COM1.log");
        check(b"lpt9", "_lpt9");
        check(b"COM10", "COM10");
        check(b"CONSOLE", "CONSOLE");
        check(b"\xff\xfeab", "\u{FFFD}\u{FFFD}ab");
        check(b"a*b?c\"d<e>f|g", "a_b_c_d_e_f_g");
        check(b" leading space", " leading space");
    }

    #[test]
    fn lossy_trimmed_is_lossy_then_trim() {
        for b in [
            &b" a\xffb\xff\xfe "[..],
            b"\xff",
            b"",
            b"  ",
            b"ok",
            b"\xf0\x9f\x98",
        ] {
            let want = String::from_utf8_lossy(b).trim().to_string();
            let got = lossy_trimmed(b);
            assert_eq!(got, want);
            assert_eq!(
                got.capacity(),
                String::from_utf8_lossy(b).len(),
                "exact size"
            );
        }
    }

    #[test]
    fn long_component_keeps_extension() {
        let long = format!("{}.mkv", "a".repeat(300));
        let s = sanitize_component(long.as_bytes());
        assert_eq!(s.len(), MAX_COMPONENT_LEN);
        assert!(s.ends_with("a.mkv"));
        // multi-byte characters are never split
        let long = "é".repeat(200);
        let s = sanitize_component(long.as_bytes());
        assert!(s.len() <= MAX_COMPONENT_LEN);
        assert_eq!(s, "é".repeat(MAX_COMPONENT_LEN / 2));
    }

    #[test]
    fn join_stays_under_base() {
        let base = Path::new("/downloads");
        let p = join_under(base, &["..", "/etc", "C:", "x"]);
        assert_eq!(p, Path::new("/downloads/_/_etc/C_/x"));
    }

    #[test]
    fn unique_names() {
        let used = ["foo/bar.txt", "foo/bar.1.txt"];
        let taken = |c: &str| used.contains(&format!("foo/{c}").as_str());
        let mut budget = 10;
        let mut taken = taken;
        assert_eq!(
            unique_name("bar.txt", &mut taken, &mut budget).unwrap(),
            "bar.2.txt"
        );
        assert_eq!(budget, 9);
        let mut budget = 0;
        assert_eq!(unique_name("bar.txt", &mut taken, &mut budget), None);
        assert_eq!(
            unique_name("noext", &mut |_| false, &mut 0).unwrap(),
            "noext.1"
        );
    }

    proptest! {
        #[test]
        fn any_component_is_one_normal_component(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = sanitize_component(&raw);
            prop_assert_eq!(sanitize_component_cow(&raw), s.as_str());
            prop_assert!(is_single_normal(&s), "{:?}", s);
            prop_assert!(!s.is_empty() && s.len() <= MAX_COMPONENT_LEN);
            prop_assert_eq!(sanitize_component(s.as_bytes()), s.clone(), "not idempotent");
        }

        #[test]
        fn any_text_component_is_one_normal_component(raw in "\\PC{0,300}|[./\\\\: ]{0,8}|[cClLnNpPaA][oOuUrRpP][nNlLxXtTmM][0-9]?(\\.[a-z]{0,3})?") {
            let s = sanitize_component(raw.as_bytes());
            prop_assert_eq!(sanitize_component_cow(raw.as_bytes()), s.as_str());
            prop_assert!(is_single_normal(&s), "{:?}", s);
            prop_assert!(!is_reserved_windows_name(&s), "{:?}", s);
            prop_assert_eq!(sanitize_component(s.as_bytes()), s.clone(), "not idempotent");
        }

        #[test]
        fn any_path_stays_under_base(raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let rel = join_under(Path::new(""), &sanitize_path(&raw));
            prop_assert!(rel.is_relative());
            prop_assert_eq!(rel.components().count(), raw.len());
            for c in rel.components() {
                prop_assert!(matches!(c, Component::Normal(_)), "{:?}", rel);
            }
            let base = Path::new("/base/dir");
            prop_assert!(join_under(base, &sanitize_path(&raw)).starts_with(base));
        }
    }
}
