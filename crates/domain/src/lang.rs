//! A small language guess for English and French from function words and accents. Good enough
//! to route reviews and to report what the model sees; not a general language identifier.

/// English function words (lowercase).
fn is_english(w: &str) -> bool {
    matches!(
        w,
        "the"
            | "and"
            | "is"
            | "it"
            | "this"
            | "to"
            | "of"
            | "a"
            | "i"
            | "in"
            | "that"
            | "was"
            | "for"
            | "with"
            | "but"
            | "not"
            | "my"
            | "have"
            | "you"
            | "on"
            | "are"
            | "very"
            | "be"
            | "as"
            | "they"
            | "so"
            | "all"
            | "at"
            | "would"
            | "had"
            | "if"
            | "just"
            | "its"
            | "it's"
            | "i'm"
            | "don't"
            | "great"
            | "good"
            | "from"
            | "what"
            | "which"
            | "when"
            | "there"
            | "were"
            | "has"
            | "been"
            | "an"
            | "or"
            | "no"
            | "one"
            | "about"
            | "really"
    )
}

/// French function words (lowercase).
fn is_french(w: &str) -> bool {
    matches!(
        w,
        "le" | "la"
            | "les"
            | "de"
            | "des"
            | "du"
            | "et"
            | "est"
            | "un"
            | "une"
            | "pas"
            | "je"
            | "que"
            | "qui"
            | "pour"
            | "dans"
            | "ce"
            | "il"
            | "elle"
            | "au"
            | "aux"
            | "avec"
            | "sur"
            | "très"
            | "mais"
            | "ne"
            | "se"
            | "son"
            | "sa"
            | "ses"
            | "plus"
            | "bien"
            | "tout"
            | "ou"
            | "cette"
            | "c'est"
            | "j'ai"
            | "nous"
            | "vous"
            | "mon"
            | "ma"
            | "mes"
            | "été"
            | "être"
            | "avoir"
            | "fait"
            | "comme"
            | "aussi"
            | "trop"
            | "peu"
            | "livre"
            | "produit"
            | "qualité"
            | "prix"
            | "ça"
    )
}

/// Guess "en", "fr" or "und" (undetermined) for a text.
pub fn guess_language(text: &str) -> &'static str {
    let mut en = 0u32;
    let mut fr = 0u32;
    let mut words = 0u32;
    let mut lower = String::with_capacity(32);
    for raw in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .take(400)
    {
        words += 1;
        lower.clear();
        // Lowercase without allocating per word; normalise the typographic apostrophe.
        for c in raw.chars() {
            if c == '’' {
                lower.push('\'');
            } else if c.is_ascii() {
                lower.push(c.to_ascii_lowercase());
            } else {
                lower.extend(c.to_lowercase());
            }
        }
        let w = lower.as_str();
        en += u32::from(is_english(w));
        fr += u32::from(is_french(w));
        // Elided articles (l'album, d'un, qu'il) are French.
        if w.len() > 2 && (w.starts_with("l'") || w.starts_with("d'") || w.starts_with("qu'")) {
            fr += 1;
        }
    }
    fr += text
        .chars()
        .take(2000)
        .filter(|c| matches!(c, 'é' | 'è' | 'ê' | 'à' | 'ç' | 'ù' | 'â' | 'î' | 'ô' | 'û'))
        .count()
        .min(5) as u32;
    if words == 0 || en.max(fr) < 2.min(words) {
        return "und";
    }
    if fr > en {
        "fr"
    } else if en > fr {
        "en"
    } else {
        "und"
    }
}

#[cfg(test)]
mod tests {
    use super::guess_language;

    #[test]
    fn english_and_french() {
        assert_eq!(guess_language("This is a great album and I love it"), "en");
        assert_eq!(
            guess_language("je conseille fortement ce bouquin à ceux qui sont intéressé"),
            "fr"
        );
        assert_eq!(guess_language("Très bon produit, livraison rapide"), "fr");
        assert_eq!(guess_language(""), "und");
        assert_eq!(guess_language("12345 !!!"), "und");
    }
}
