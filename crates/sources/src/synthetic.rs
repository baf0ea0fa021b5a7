//! A deterministic, seeded generator of realistic reviews (English and French), for the
//! embedded default, tests and benchmarks: the project cannot ship real review data.
//!
//! Products have a category and a popularity (a few get most reviews); buyers review several
//! products; each review talks about one to three topics a shopper writes about, with a rating
//! that agrees with what it says; longer, concrete reviews collect more helpful votes over time.
//! A small share of rows is deliberately invalid (bad ratings, empty texts, impossible dates,
//! duplicates, missing columns) so the reject path is always exercised.

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reviews_domain::RawReview;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SyntheticConfig {
    pub seed: u64,
    pub reviews: u64,
    /// Number of products; default: one per 20 reviews, at least 10.
    pub products: Option<u64>,
    /// Share of rows made invalid on purpose, in [0, 1].
    pub invalid_share: f64,
    /// Share of French reviews.
    pub french_share: f64,
    /// Reviews are dated up to this day.
    pub until: NaiveDate,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            reviews: 10_000,
            products: None,
            invalid_share: 0.01,
            french_share: 0.15,
            until: NaiveDate::from_ymd_opt(2026, 10, 31).expect("valid date"),
        }
    }
}

struct Category {
    name: &'static str,
    nouns: &'static [&'static str],
}

const CATEGORIES: &[Category] = &[
    Category {
        name: "Kitchen",
        nouns: &[
            "Kettle",
            "Toaster",
            "Blender",
            "Coffee Grinder",
            "Knife Set",
            "Frying Pan",
        ],
    },
    Category {
        name: "Electronics",
        nouns: &[
            "Bluetooth Speaker",
            "Headphones",
            "USB-C Charger",
            "Power Bank",
            "Webcam",
            "Keyboard",
        ],
    },
    Category {
        name: "Home",
        nouns: &[
            "Desk Lamp",
            "Vacuum Cleaner",
            "Duvet",
            "Air Purifier",
            "Storage Box",
            "Wall Clock",
        ],
    },
    Category {
        name: "Sports",
        nouns: &[
            "Yoga Mat",
            "Running Shoes",
            "Water Bottle",
            "Dumbbell Set",
            "Cycling Helmet",
            "Backpack",
        ],
    },
    Category {
        name: "Toys",
        nouns: &[
            "Building Blocks",
            "Puzzle",
            "Remote Car",
            "Board Game",
            "Plush Bear",
            "Drawing Kit",
        ],
    },
    Category {
        name: "Garden",
        nouns: &[
            "Hose Reel",
            "Pruning Shears",
            "Solar Lights",
            "Garden Chair",
            "Watering Can",
            "Bird Feeder",
        ],
    },
];

const BRANDS: &[&str] = &[
    "Acme",
    "Norvik",
    "Lumo",
    "Brightline",
    "Kestrel",
    "Oakfield",
    "Vela",
    "Tidewater",
];
const ADJECTIVES: &[&str] = &[
    "Classic", "Pro", "Compact", "Deluxe", "Eco", "Smart", "Mini", "XL",
];

/// Sentences by topic: (topic, English positive, English negative, French positive, French negative).
/// (topic id, English positive, English negative, French positive, French negative).
type TopicSentences = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const SENTENCES: &[TopicSentences] = &[
    (
        "product_quality",
        &[
            "The build quality is excellent and it feels solid in the hand.",
            "Materials are much better than I expected at this level.",
            "It does exactly what it says and the finish is flawless.",
            "Performance is great, noticeably better than my old one.",
        ],
        &[
            "The plastic feels cheap and one part was faulty out of the box.",
            "Quality is poor: the seams are rough and it wobbles.",
            "It stopped working properly after a few uses, clearly a defect.",
            "The finish scratched immediately and the buttons feel flimsy.",
        ],
        &[
            "La qualité de fabrication est excellente, c'est solide.",
            "Les matériaux sont bien meilleurs que prévu.",
            "Il fait exactement ce qui est annoncé, finition impeccable.",
            "Les performances sont très bonnes, bien mieux que mon ancien.",
        ],
        &[
            "Le plastique fait bon marché et une pièce était défectueuse.",
            "Qualité médiocre, les finitions sont grossières.",
            "Il ne fonctionne plus correctement après quelques utilisations.",
            "La finition s'est rayée tout de suite, les boutons sont fragiles.",
        ],
    ),
    (
        "value_for_money",
        &[
            "For the price it is a real bargain.",
            "Great value for money compared to the big brands.",
            "Worth every penny, I would pay more for it.",
            "Cheaper than the shops and just as good.",
        ],
        &[
            "Overpriced for what you actually get.",
            "Not worth the money, you can find better for less.",
            "Too expensive given how basic it is.",
            "The price went up and it is no longer good value.",
        ],
        &[
            "Pour ce prix, c'est une excellente affaire.",
            "Très bon rapport qualité prix.",
            "Il vaut largement son prix.",
            "Moins cher qu'en magasin et tout aussi bien.",
        ],
        &[
            "Trop cher pour ce que c'est.",
            "Le rapport qualité prix n'est pas bon.",
            "Prix excessif pour un produit aussi basique.",
            "On trouve mieux pour moins cher ailleurs.",
        ],
    ),
    (
        "delivery_packaging",
        &[
            "Delivery was fast, it arrived the next day.",
            "It came well packaged in a sturdy box.",
            "Shipping was quick and the parcel was tracked all the way.",
            "Arrived earlier than estimated and perfectly wrapped.",
        ],
        &[
            "The parcel arrived late and the box was crushed.",
            "Delivery took three weeks and nobody could tell me why.",
            "It arrived damaged because the packaging was too thin.",
            "The courier left it in the rain and the box was soaked.",
        ],
        &[
            "Livraison rapide, reçu le lendemain.",
            "Le colis était bien emballé dans un carton solide.",
            "Expédition rapide et colis suivi jusqu'au bout.",
            "Arrivé plus tôt que prévu et parfaitement emballé.",
        ],
        &[
            "Le colis est arrivé en retard et la boîte était écrasée.",
            "La livraison a pris trois semaines.",
            "Arrivé abîmé car l'emballage était trop léger.",
            "Le transporteur l'a laissé sous la pluie.",
        ],
    ),
    (
        "customer_service",
        &[
            "Customer service replied within an hour and solved my issue.",
            "The seller sent a replacement part without any fuss.",
            "I had a question and support was friendly and helpful.",
            "The refund was processed the same day I returned it.",
        ],
        &[
            "Customer service never answered my emails.",
            "The seller refused a refund even though it was faulty.",
            "Support kept sending me scripted replies that did not help.",
            "I returned it a month ago and I am still waiting for my refund.",
        ],
        &[
            "Le service client a répondu en une heure et réglé mon problème.",
            "Le vendeur a envoyé une pièce de remplacement sans discuter.",
            "Le support a été aimable et efficace.",
            "Le remboursement a été fait le jour même du retour.",
        ],
        &[
            "Le service client n'a jamais répondu à mes mails.",
            "Le vendeur a refusé le remboursement malgré le défaut.",
            "Le support ne m'a envoyé que des réponses toutes faites.",
            "Retour effectué il y a un mois, toujours pas remboursé.",
        ],
    ),
    (
        "ease_of_use",
        &[
            "Setup took two minutes and the instructions are clear.",
            "Very easy to use, even my kids figured it out.",
            "Intuitive controls, no need to read the manual.",
            "Easy to clean and simple to store.",
        ],
        &[
            "The instructions are confusing and setup took an hour.",
            "Far too complicated for such a simple task.",
            "The controls are unintuitive and hard to reach.",
            "Difficult to clean, food gets stuck everywhere.",
        ],
        &[
            "Installation en deux minutes, la notice est claire.",
            "Très facile à utiliser, même pour les enfants.",
            "Commandes intuitives, pas besoin du mode d'emploi.",
            "Facile à nettoyer et pratique à ranger.",
        ],
        &[
            "La notice est incompréhensible, installation très longue.",
            "Beaucoup trop compliqué pour une tâche simple.",
            "Les commandes ne sont pas pratiques du tout.",
            "Difficile à nettoyer, ça se coince partout.",
        ],
    ),
    (
        "durability",
        &[
            "I have used it daily for two years and it still works like new.",
            "Robust enough to survive a few drops.",
            "After months of heavy use there is no visible wear.",
            "Built to last, my previous one lasted ten years.",
        ],
        &[
            "It broke after three months of normal use.",
            "The hinge cracked within weeks.",
            "After a year it fell apart completely.",
            "The coating wore off after a few washes.",
        ],
        &[
            "Je l'utilise tous les jours depuis deux ans, il est comme neuf.",
            "Assez robuste pour survivre à quelques chutes.",
            "Après des mois d'utilisation, aucune usure visible.",
            "Fait pour durer, le précédent a tenu dix ans.",
        ],
        &[
            "Il s'est cassé au bout de trois mois.",
            "La charnière s'est fendue en quelques semaines.",
            "Au bout d'un an, il est tombé en morceaux.",
            "Le revêtement est parti après quelques lavages.",
        ],
    ),
];

const OPENERS_EN: &[&str] = &[
    "Bought this as a gift.",
    "I needed a replacement for my old one.",
    "I compared several models before choosing this one.",
    "",
    "",
    "",
];
const OPENERS_FR: &[&str] = &[
    "Acheté pour offrir.",
    "Il fallait remplacer l'ancien.",
    "J'ai comparé plusieurs modèles avant de choisir.",
    "",
    "",
    "",
];
const VAGUE_EN: &[&str] = &[
    "Love it!",
    "Great product.",
    "Five stars.",
    "Not for me.",
    "OK I guess.",
    "Awful.",
];
const VAGUE_FR: &[&str] = &[
    "Super !",
    "Très bien.",
    "Parfait.",
    "Bof.",
    "Pas terrible.",
    "Nul.",
];
const CLOSERS_EN: &[&str] = &[
    "Would recommend.",
    "I would buy it again.",
    "Think twice before buying.",
    "",
    "",
];
const CLOSERS_FR: &[&str] = &["Je recommande.", "Je le rachèterais.", "À éviter.", "", ""];

/// An iterator of synthetic [`RawReview`]s; the same config always yields the same rows.
pub struct SyntheticReviews {
    cfg: SyntheticConfig,
    rng: ChaCha8Rng,
    products: u64,
    buyers: u64,
    next: u64,
    previous: Option<RawReview>,
    start: NaiveDate,
    span_days: u64,
}

impl SyntheticReviews {
    pub fn new(cfg: SyntheticConfig) -> Self {
        let products = cfg.products.unwrap_or((cfg.reviews / 20).max(10)).max(1);
        let buyers = (cfg.reviews / 4).max(10);
        let start = NaiveDate::from_ymd_opt(2012, 1, 1).expect("valid date");
        let span_days = (cfg.until - start).num_days().max(1) as u64;
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            products,
            buyers,
            next: 0,
            previous: None,
            start,
            span_days,
        }
    }

    /// Product id for a product index: Amazon-like ASINs.
    pub fn product_id(index: u64) -> String {
        format!("B0{index:08}")
    }

    fn product_info(&self, index: u64) -> (String, &'static str) {
        // Titles derive from the index alone so every review of a product agrees on them.
        let cat = &CATEGORIES[(index % CATEGORIES.len() as u64) as usize];
        let h = index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let brand = BRANDS[(h >> 8) as usize % BRANDS.len()];
        let adj = ADJECTIVES[(h >> 20) as usize % ADJECTIVES.len()];
        let noun = cat.nouns[(h >> 32) as usize % cat.nouns.len()];
        (
            format!("{brand} {adj} {noun} {}", 100 + index % 900),
            cat.name,
        )
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn generate(&mut self) -> RawReview {
        let i = self.next;
        // Popularity: squaring a uniform draw puts most reviews on a few products.
        let u: f64 = self.rng.random();
        let product = ((u * u) * self.products as f64) as u64 % self.products;
        let (product_title, category) = self.product_info(product);
        let buyer = self.rng.random_range(0..self.buyers);
        let french = self.rng.random_bool(self.cfg.french_share);
        let quality: f64 = self.rng.random(); // latent product quality of this experience
        let rating = (1.0 + quality * 4.0 + self.rng.random_range(-0.6..0.6))
            .round()
            .clamp(1.0, 5.0) as u8;
        let positive = rating >= 3;

        // Vague one-liners are common; concrete reviews cover 1-3 topics.
        let topic_count = if self.rng.random_bool(0.25) {
            0
        } else {
            self.rng.random_range(1..=3)
        };
        let mut parts: Vec<&str> = Vec::new();
        let opener = self.pick(if french { OPENERS_FR } else { OPENERS_EN });
        parts.push(opener);
        let mut topics = Vec::new();
        for _ in 0..topic_count {
            let t = self.rng.random_range(0..SENTENCES.len());
            if topics.contains(&t) {
                continue;
            }
            topics.push(t);
            let (_, en_pos, en_neg, fr_pos, fr_neg) = SENTENCES[t];
            let pool = match (french, positive) {
                (false, true) => en_pos,
                (false, false) => en_neg,
                (true, true) => fr_pos,
                (true, false) => fr_neg,
            };
            let first = self.rng.random_range(0..pool.len());
            parts.push(pool[first]);
            if self.rng.random_bool(0.4) {
                parts.push(pool[(first + 1) % pool.len()]);
            }
        }
        if topics.is_empty() {
            let vague = if french { VAGUE_FR } else { VAGUE_EN };
            parts.push(
                vague[if positive {
                    self.rng.random_range(0..3)
                } else {
                    self.rng.random_range(3..6)
                }],
            );
        }
        let closer = self.pick(if french { CLOSERS_FR } else { CLOSERS_EN });
        parts.push(closer);
        let mut text = parts
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        // Real exports carry HTML line breaks and entities; so do ours, sometimes.
        if self.rng.random_bool(0.05) {
            text = text
                .replacen(". ", ".<br /><br />", 1)
                .replace('\'', "&#39;");
        }
        let title = if french {
            if positive {
                "Très satisfait"
            } else {
                "Déçu"
            }
        } else if positive {
            "Does the job"
        } else {
            "Disappointed"
        };

        let days = self.rng.random_range(0..=self.span_days);
        let date = self.start + Days::new(days);
        // Votes grow with age and with how much the review says.
        let age_years = (self.span_days - days) as f64 / 365.0;
        let concrete = topics.len() as f64 + text.len() as f64 / 200.0;
        let expected = concrete * (0.3 + age_years * 0.4) * self.rng.random_range(0.0..2.0);
        let total = expected.round() as u32 + u32::from(self.rng.random_bool(0.1));
        let helpful = ((total as f64) * (0.4 + 0.15 * topics.len() as f64).min(1.0)).round() as u32;

        RawReview {
            review_id: Some(format!("RS{:010}", i)),
            product_id: Some(Self::product_id(product)),
            product_title: Some(product_title),
            product_category: Some(category.to_owned()),
            buyer_id: Some(format!("C{buyer:08}")),
            rating: Some(rating.to_string()),
            title: Some(title.to_owned()),
            text: Some(text),
            helpful_votes: Some(helpful.min(total).to_string()),
            total_votes: Some(total.to_string()),
            verified_purchase: Some(if self.rng.random_bool(0.8) { "Y" } else { "N" }.to_owned()),
            review_date: Some(date.to_string()),
            language: None,
            marketplace: Some(if french { "FR" } else { "UK" }.to_owned()),
            source_position: Some(i + 1),
            read_defect: None,
        }
    }

    /// Break a valid row in one of the ways real exports are broken.
    fn corrupt(&mut self, mut row: RawReview) -> RawReview {
        match self.rng.random_range(0..8) {
            0 => {
                row.rating = Some(["0", "6", "-1", "five"][self.rng.random_range(0..4)].to_owned())
            }
            1 => row.text = Some(["", "   ", "<br />"][self.rng.random_range(0..3)].to_owned()),
            2 => row.review_date = Some("2099-01-01".to_owned()),
            3 => row.review_date = Some("2015-02-30".to_owned()),
            4 => {
                if let Some(prev) = &self.previous {
                    row.review_id = prev.review_id.clone();
                }
            }
            5 => {
                if let Some(prev) = &self.previous {
                    // The same buyer posting the same text twice on the same product.
                    let id = row.review_id.take();
                    row = RawReview {
                        review_id: id,
                        source_position: row.source_position,
                        ..prev.clone()
                    };
                }
            }
            6 => {
                row.text = None;
                row.review_date = None;
                row.read_defect = Some("malformed_row: 9 of 15 columns".to_owned());
            }
            _ => row.product_id = Some(String::new()),
        }
        row
    }
}

impl Iterator for SyntheticReviews {
    type Item = RawReview;

    fn next(&mut self) -> Option<RawReview> {
        if self.next >= self.cfg.reviews {
            return None;
        }
        let mut row = self.generate();
        if self.next > 0 && self.rng.random_bool(self.cfg.invalid_share) {
            row = self.corrupt(row);
        } else {
            self.previous = Some(row.clone());
        }
        self.next += 1;
        Some(row)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.cfg.reviews - self.next) as usize;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let cfg = SyntheticConfig {
            reviews: 500,
            ..Default::default()
        };
        let a: Vec<_> = SyntheticReviews::new(cfg.clone()).collect();
        let b: Vec<_> = SyntheticReviews::new(cfg.clone()).collect();
        assert_eq!(a, b);
        let c: Vec<_> = SyntheticReviews::new(SyntheticConfig { seed: 7, ..cfg }).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn realistic_mix() {
        let rows: Vec<_> = SyntheticReviews::new(SyntheticConfig {
            reviews: 5_000,
            ..Default::default()
        })
        .collect();
        assert_eq!(rows.len(), 5_000);
        let french = rows
            .iter()
            .filter(|r| r.marketplace.as_deref() == Some("FR"))
            .count();
        assert!((400..1200).contains(&french), "french {french}");
        let products: std::collections::HashSet<_> =
            rows.iter().map(|r| r.product_id.clone()).collect();
        assert!(products.len() > 100);
        let broken = rows
            .iter()
            .filter(|r| r.read_defect.is_some() || r.review_date.as_deref() == Some("2099-01-01"))
            .count();
        assert!(broken > 0);
        assert!(
            rows.iter()
                .any(|r| r.text.as_deref().is_some_and(|t| t.contains("<br />")))
        );
        assert!(rows.iter().any(|r| r.helpful_votes.as_deref() != Some("0")));
    }
}
