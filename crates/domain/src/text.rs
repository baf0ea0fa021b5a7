//! Text normalisation for review titles and bodies: HTML tags and entities become text,
//! control characters go, whitespace is tidied, Unicode is NFC.
//!
//! The result is a fixed point: cleaning a cleaned text returns it unchanged (property tests and
//! the `cleaning` fuzz target check it). Decoding is repeated because exports often double-escape
//! (`&amp;quot;`), with NFC inside the loop because NFC can itself complete an entity (U+037E
//! GREEK QUESTION MARK becomes `;`). The repetition is bounded so a hostile text cannot make it
//! quadratic: escaping nested deeper than that is neutralised instead (`&` and `<` become their
//! fullwidth forms), which keeps the result a fixed point.

use unicode_normalization::UnicodeNormalization;

/// How many decode/strip passes at most (each pass removes one level of escaping).
const MAX_PASSES: usize = 16;
/// A tag longer than this is not a tag but text with a stray `<`.
const MAX_TAG_LEN: usize = 256;

/// Normalise a review text. See the module documentation.
pub fn clean_text(input: &str) -> String {
    if is_already_clean(input) {
        return input.to_owned();
    }
    clean_text_in_full(input)
}

/// Every step of [`clean_text`], without the fast path.
fn clean_text_in_full(input: &str) -> String {
    // Every step is inside the loop, so the result is a fixed point of the whole: tidying the
    // whitespace can shorten a would-be tag below MAX_TAG_LEN, NFC can complete an entity.
    let normalise = |s: &str| -> String {
        let nfc: String = remove_controls(s).nfc().collect();
        tidy_whitespace(&nfc)
    };
    let mut current = normalise(input);
    let mut settled = false;
    for _ in 0..MAX_PASSES {
        let next = normalise(&decode_entities(&strip_tags(&current)));
        if next == current {
            settled = true;
            break;
        }
        current = next;
    }
    if !settled {
        // Hostile nesting: what markup is left would decode again on the next call.
        current = current.replace('&', "\u{FF06}").replace('<', "\u{FF1C}");
    }
    current
}

/// Fast path: text that every step would leave as it is (most reviews): no markup or entity
/// to decode, no control or invisible character, single spaces between words, no space at
/// either end of a line, at most one blank line between lines, and already NFC.
fn is_already_clean(s: &str) -> bool {
    let mut prev: Option<char> = None;
    let mut breaks = 0u32;
    for c in s.chars() {
        match c {
            '&' | '<' | '\u{FEFF}' | '\u{200B}' | '\u{202A}'..='\u{202E}' => return false,
            '\n' => {
                breaks += 1;
                if matches!(prev, None | Some(' ')) || breaks > 2 {
                    return false;
                }
            }
            ' ' => {
                if matches!(prev, None | Some(' ' | '\n')) {
                    return false;
                }
                breaks = 0;
            }
            c if c.is_whitespace() || c.is_control() => return false,
            _ => breaks = 0,
        }
        prev = Some(c);
    }
    if matches!(prev, Some(' ' | '\n')) {
        return false;
    }
    s.is_ascii()
        || unicode_normalization::is_nfc_quick(s.chars())
            == unicode_normalization::IsNormalized::Yes
}

/// Drop control characters (keeping line breaks), turn tabs into spaces, CRLF into LF, and
/// drop invisible characters that only serve to spoof text (BOM, zero-width space, bidi
/// overrides). Bidi marks and isolates, which right-to-left text needs, stay.
fn remove_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' => out.push('\n'),
            '\t' => out.push(' '),
            '\u{FEFF}' | '\u{200B}' | '\u{202A}'..='\u{202E}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// HTML elements we recognise as markup. Anything else between `<` and `>` is left as text, so
/// "x<y and y>z" survives.
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "article",
    "audio",
    "b",
    "big",
    "blockquote",
    "body",
    "br",
    "button",
    "center",
    "cite",
    "code",
    "div",
    "em",
    "embed",
    "font",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "i",
    "iframe",
    "img",
    "input",
    "label",
    "li",
    "link",
    "meta",
    "nav",
    "object",
    "ol",
    "option",
    "p",
    "pre",
    "q",
    "s",
    "script",
    "section",
    "select",
    "small",
    "source",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "sup",
    "svg",
    "table",
    "tbody",
    "td",
    "textarea",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "video",
];

/// Elements that mean a line break in the text.
const BREAK_TAGS: &[&str] = &[
    "br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
];

fn strip_tags(s: &str) -> String {
    if !s.contains('<') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('<') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        match parse_tag(after) {
            Some((len, is_break)) => {
                if is_break {
                    out.push('\n');
                }
                rest = &after[len..];
            }
            None => {
                out.push('<');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// If `s` starts with a known HTML tag (`<br />`, `</p>`, `<a href=..>`, `<!-- .. -->`), return
/// its byte length and whether it breaks a line.
fn parse_tag(s: &str) -> Option<(usize, bool)> {
    let window = &s.as_bytes()[..s.len().min(MAX_TAG_LEN)];
    let end = window
        .iter()
        .skip(1)
        .position(|&c| c == b'>' || c == b'<')?
        + 1;
    if window[end] != b'>' {
        return None;
    }
    let inner = &s[1..end];
    if inner.starts_with("!--") {
        return inner.ends_with("--").then_some((end + 1, false));
    }
    let name_part = inner.strip_prefix('/').unwrap_or(inner);
    let name_len = name_part
        .bytes()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(name_part.len());
    if name_len == 0 {
        return None;
    }
    let name = name_part[..name_len].to_ascii_lowercase();
    let after_name = &name_part[name_len..];
    let well_formed = after_name.is_empty()
        || after_name.starts_with(|c: char| c.is_ascii_whitespace() || c == '/');
    if !well_formed || !TAGS.contains(&name.as_str()) {
        return None;
    }
    Some((end + 1, BREAK_TAGS.contains(&name.as_str())))
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        match parse_entity(after) {
            Some((len, ch)) => {
                out.push(ch);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse `&name;`, `&#123;` or `&#x7B;` at the start of `s`.
fn parse_entity(s: &str) -> Option<(usize, char)> {
    let semi = s.as_bytes().iter().take(12).position(|&c| c == b';')?;
    let body = &s[1..semi];
    let ch = if let Some(num) = body.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse::<u32>().ok()?
        };
        char::from_u32(code)
            .filter(|&c| c != '\0')
            .unwrap_or('\u{FFFD}')
    } else {
        named_entity(body)?
    };
    Some((semi + 1, ch))
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "hellip" => '…',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "euro" => '€',
        "pound" => '£',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "eacute" => 'é',
        "Eacute" => 'É',
        "egrave" => 'è',
        "Egrave" => 'È',
        "ecirc" => 'ê',
        "euml" => 'ë',
        "agrave" => 'à',
        "Agrave" => 'À',
        "acirc" => 'â',
        "ccedil" => 'ç',
        "Ccedil" => 'Ç',
        "icirc" => 'î',
        "iuml" => 'ï',
        "ocirc" => 'ô',
        "ouml" => 'ö',
        "ugrave" => 'ù',
        "ucirc" => 'û',
        "uuml" => 'ü',
        "auml" => 'ä',
        "szlig" => 'ß',
        "oelig" => 'œ',
        _ => return None,
    })
}

/// Collapse runs of horizontal white space to one space, trim each line, keep at most one
/// blank line between paragraphs, trim the whole.
fn tidy_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0usize;
    for line in s.split('\n') {
        let mut tidy = String::with_capacity(line.len());
        for word in line
            .split(|c: char| c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            if !tidy.is_empty() {
                tidy.push(' ');
            }
            tidy.push_str(word);
        }
        if tidy.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run > 0 {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(&tidy);
    }
    out
}

/// Word count as a reader would count it: runs of alphanumeric characters.
pub fn word_count(s: &str) -> u32 {
    let mut count = 0u32;
    let mut in_word = false;
    for c in s.chars() {
        let w = c.is_alphanumeric();
        if w && !in_word {
            count = count.saturating_add(1);
        }
        in_word = w;
    }
    count
}

/// Character count in Unicode scalar values.
pub fn char_count(s: &str) -> u32 {
    u32::try_from(s.chars().count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn br_tags_become_line_breaks() {
        assert_eq!(
            clean_text("Great.<br /><br />Would buy again"),
            "Great.\n\nWould buy again"
        );
        assert_eq!(clean_text("a<BR>b"), "a\nb");
    }

    #[test]
    fn entities_decode_including_double_escaped() {
        assert_eq!(clean_text("&quot;Fab&quot; &amp; cheap"), "\"Fab\" & cheap");
        assert_eq!(clean_text("it&#39;s &#x263A;"), "it's ☺");
        assert_eq!(clean_text("&amp;quot;x&amp;quot;"), "\"x\"");
        assert_eq!(clean_text("tr&egrave;s bien"), "très bien");
    }

    #[test]
    fn unknown_or_broken_entities_stay_text() {
        assert_eq!(clean_text("R&D and &foo; & co"), "R&D and &foo; & co");
        assert_eq!(clean_text("&#99999999999;"), "&#99999999999;");
        assert_eq!(clean_text("&#0;x"), "\u{FFFD}x");
    }

    #[test]
    fn non_tags_survive() {
        assert_eq!(clean_text("x<y and y>z"), "x<y and y>z");
        assert_eq!(clean_text("I <3 it"), "I <3 it");
        assert_eq!(clean_text("<script>alert(1)</script>"), "alert(1)");
        assert_eq!(clean_text("a<!-- c -->b"), "ab");
    }

    #[test]
    fn encoded_tags_are_stripped_after_decoding() {
        assert_eq!(clean_text("one&lt;br /&gt;two"), "one\ntwo");
    }

    #[test]
    fn whitespace_and_controls() {
        assert_eq!(clean_text("  a \t b\r\nc\u{0}d\u{7}  "), "a b\ncd");
        assert_eq!(clean_text("a\n\n\n\nb"), "a\n\nb");
        assert_eq!(clean_text("a\u{a0}\u{a0}b"), "a b");
        assert_eq!(clean_text("\u{feff}bom\u{200b}"), "bom");
    }

    #[test]
    fn unicode_is_nfc_and_rtl_and_emoji_survive() {
        assert_eq!(clean_text("e\u{301}te\u{301}"), "\u{e9}t\u{e9}");
        assert_eq!(clean_text("رائع جدا 👍🏽"), "رائع جدا 👍🏽");
        assert_eq!(clean_text("a\u{202E}b"), "ab");
        assert_eq!(clean_text("\u{200F}שלום"), "\u{200F}שלום");
    }

    #[test]
    fn counts() {
        assert_eq!(word_count("It's great, really!"), 4);
        assert_eq!(word_count(""), 0);
        assert_eq!(char_count("été"), 3);
    }

    #[test]
    fn clean_is_idempotent_on_examples() {
        for s in [
            "&amp;amp;lt;b&amp;gt;",
            "a <b>b</b>  c\n\n\nd",
            "&lt;&lt;br&gt;&gt;",
            "< br>",
            // Found by the cleaning fuzz target: NFC turns U+037E into ';', completing "&#2;".
            "\u{1f}\u{1f}&#2\u{37e}",
            "&lt\u{37e}script>",
            // Found by the fuzz target too: escaping nested deeper than the passes allow.
            "R\u{1f}\u{1f}&amp;amp;amp;amp;amp;amp;amp;amp;amp;",
            &"&amp;".repeat(40),
            // And: tidied whitespace shortening a would-be tag below the tag length limit.
            &format!("<br\t\r\n\u{2003}{} /><p>", "\u{fffd}\u{0}".repeat(90)),
        ] {
            let once = clean_text(s);
            assert_eq!(clean_text(&once), once, "input {s:?}");
        }
        // Ordinary double escaping still decodes fully.
        assert_eq!(clean_text("&amp;quot;ok&amp;quot;"), "\"ok\"");
    }

    proptest::proptest! {
        /// The fast path only takes text that the full cleaning leaves as it is.
        #[test]
        fn fast_path_agrees_with_the_full_cleaning(
            s in "[ab é\u{0301}\u{00A0}\u{200B}\t\r\n&<>;.]{0,24}"
        ) {
            proptest::prop_assert_eq!(clean_text(&s), clean_text_in_full(&s));
            if is_already_clean(&s) {
                proptest::prop_assert_eq!(clean_text_in_full(&s), s);
            }
        }
    }

    #[test]
    fn fast_path_takes_ordinary_text_in_any_script() {
        for text in [
            "Great kettle, boils fast",
            "Très bon produit.\n\nLivré à temps",
            "Zwei Zeilen\nohne Leerzeichen am Ende",
        ] {
            assert!(is_already_clean(text), "{text:?}");
            assert_eq!(clean_text_in_full(text), text);
        }
        for text in [
            " lead",
            "trail ",
            "two  spaces",
            "a \nb",
            "a\n\n\nb",
            "\nx",
            "e\u{0301}",
        ] {
            assert!(!is_already_clean(text), "{text:?}");
        }
    }
}
