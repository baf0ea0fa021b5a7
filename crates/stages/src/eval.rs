//! Ranking evaluation against real helpful votes (docs/ARCHITECTURE.md section 2.4): NDCG@k
//! with gain log2(1 + helpful votes), over products with at least 5 reviews and one voted
//! review, and an age-controlled pairwise accuracy (pairs of one product's reviews posted within
//! 90 days of each other, where one has at least 2 votes and more than the other). Helpful votes
//! pile up on older reviews, so the pairwise figure is the one that judges quality rather than
//! age.

use std::collections::BTreeMap;

use serde::Serialize;

/// What evaluation needs of a review.
#[derive(Debug, Clone)]
pub struct Judged {
    pub product_id: String,
    pub helpful_votes: u32,
    /// Days since an epoch (any), to find pairs posted close together.
    pub day: i64,
}

/// Ranking quality of one ranking.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RankingQuality {
    pub name: String,
    pub ndcg_at_1: f64,
    pub ndcg_at_3: f64,
    pub ndcg_at_5: f64,
    pub pairwise_accuracy: f64,
    /// 95 % intervals of NDCG@5 and of the pairwise accuracy, bootstrapped over products
    /// (products drawn with replacement, [`BOOTSTRAP_SAMPLES`] times, a fixed seed).
    pub ndcg_at_5_ci: [f64; 2],
    pub pairwise_accuracy_ci: [f64; 2],
}

/// Bootstrap resamples behind the intervals.
pub const BOOTSTRAP_SAMPLES: usize = 1000;

/// A small deterministic generator (splitmix64): the intervals are the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The 2.5 % and 97.5 % percentiles of the mean of `groups` (each group: a sum and a count)
/// when the groups are drawn with replacement.
fn bootstrap_ci(groups: &[(f64, f64)]) -> [f64; 2] {
    if groups.is_empty() {
        return [0.0, 0.0];
    }
    let mut rng = SplitMix(0x5EED);
    let mut means: Vec<f64> = (0..BOOTSTRAP_SAMPLES)
        .map(|_| {
            let (mut sum, mut n) = (0.0, 0.0);
            for _ in 0..groups.len() {
                let (s, c) = groups[(rng.next() % groups.len() as u64) as usize];
                sum += s;
                n += c;
            }
            if n > 0.0 { sum / n } else { 0.0 }
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((means.len() - 1) as f64 * q).round() as usize];
    [at(0.025), at(0.975)]
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub reviews: usize,
    /// Products with >= 5 reviews and >= 1 voted review (the NDCG population).
    pub products: usize,
    /// Age-controlled pairs (the pairwise population).
    pub pairs: usize,
    /// Whether the file has the votes to measure anything (at least one product for NDCG or
    /// one pair); when false every figure is 0 and means nothing.
    pub measurable: bool,
    pub rankings: Vec<RankingQuality>,
}

/// Products eligible for NDCG: indices of their reviews.
pub fn eligible_products(items: &[Judged]) -> Vec<Vec<usize>> {
    let mut by_product: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        by_product.entry(&it.product_id).or_default().push(i);
    }
    by_product
        .into_values()
        .filter(|v| v.len() >= 5 && v.iter().any(|&i| items[i].helpful_votes > 0))
        .collect()
}

/// Age-controlled pairs (winner, loser) as described in the module documentation.
pub fn age_controlled_pairs(items: &[Judged]) -> Vec<(usize, usize)> {
    let mut by_product: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        by_product.entry(&it.product_id).or_default().push(i);
    }
    let mut pairs = Vec::new();
    for idx in by_product.values() {
        for (a_pos, &a) in idx.iter().enumerate() {
            for &b in &idx[a_pos + 1..] {
                let (x, y) = (&items[a], &items[b]);
                if (x.day - y.day).abs() > 90 || x.helpful_votes == y.helpful_votes {
                    continue;
                }
                let (w, l) = if x.helpful_votes > y.helpful_votes {
                    (a, b)
                } else {
                    (b, a)
                };
                if items[w].helpful_votes >= 2 {
                    pairs.push((w, l));
                }
            }
        }
    }
    pairs
}

fn gain(votes: u32) -> f64 {
    (1.0 + f64::from(votes)).log2()
}

/// NDCG@k of ranking `group` by `score` (higher first; ties broken by index, deterministic).
pub fn ndcg_at(items: &[Judged], group: &[usize], score: &[f64], k: usize) -> f64 {
    let mut ranked = group.to_vec();
    ranked.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(pos, &i)| gain(items[i].helpful_votes) / (pos as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = group.iter().map(|&i| items[i].helpful_votes).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(pos, &v)| gain(v) / (pos as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// Share of pairs whose winner scores higher (a tie counts half).
pub fn pairwise_accuracy(pairs: &[(usize, usize)], score: &[f64]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let won: f64 = pairs
        .iter()
        .map(|&(w, l)| match score[w].total_cmp(&score[l]) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        })
        .sum();
    won / pairs.len() as f64
}

/// Evaluate named rankings (one score per review, higher = ranked first).
pub fn evaluate(items: &[Judged], rankings: &[(String, Vec<f64>)]) -> EvalReport {
    let products = eligible_products(items);
    let pairs = age_controlled_pairs(items);
    let mean = |f: &dyn Fn(&[usize]) -> f64| {
        if products.is_empty() {
            0.0
        } else {
            products.iter().map(|g| f(g)).sum::<f64>() / products.len() as f64
        }
    };
    // The pairs of each product, for the bootstrap over products.
    let mut pairs_by_product: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for &(w, l) in &pairs {
        pairs_by_product
            .entry(&items[w].product_id)
            .or_default()
            .push((w, l));
    }
    let rankings = rankings
        .iter()
        .map(|(name, score)| {
            let ndcg5: Vec<(f64, f64)> = products
                .iter()
                .map(|g| (ndcg_at(items, g, score, 5), 1.0))
                .collect();
            let won: Vec<(f64, f64)> = pairs_by_product
                .values()
                .map(|ps| {
                    (
                        pairwise_accuracy(ps, score) * ps.len() as f64,
                        ps.len() as f64,
                    )
                })
                .collect();
            RankingQuality {
                name: name.clone(),
                ndcg_at_1: mean(&|g| ndcg_at(items, g, score, 1)),
                ndcg_at_3: mean(&|g| ndcg_at(items, g, score, 3)),
                ndcg_at_5: mean(&|g| ndcg_at(items, g, score, 5)),
                pairwise_accuracy: pairwise_accuracy(&pairs, score),
                ndcg_at_5_ci: bootstrap_ci(&ndcg5),
                pairwise_accuracy_ci: bootstrap_ci(&won),
            }
        })
        .collect();
    EvalReport {
        measurable: !products.is_empty() || !pairs.is_empty(),
        reviews: items.len(),
        products: products.len(),
        pairs: pairs.len(),
        rankings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(p: &str, votes: u32, day: i64) -> Judged {
        Judged {
            product_id: p.into(),
            helpful_votes: votes,
            day,
        }
    }

    #[test]
    fn ndcg_perfect_and_reversed() {
        let items: Vec<_> = [5, 3, 1, 0, 0].iter().map(|&v| j("p", v, 0)).collect();
        let g: Vec<usize> = (0..5).collect();
        let perfect = [5.0, 4.0, 3.0, 2.0, 1.0];
        assert!((ndcg_at(&items, &g, &perfect, 5) - 1.0).abs() < 1e-12);
        let reversed = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!(ndcg_at(&items, &g, &reversed, 5) < 0.7);
        assert_eq!(ndcg_at(&items, &g, &reversed, 1), 0.0);
    }

    #[test]
    fn pairs_are_age_controlled() {
        let items = vec![
            j("p", 5, 0),
            j("p", 1, 30),
            j("p", 9, 400),
            j("q", 3, 0),
            j("p", 1, 10),
        ];
        let pairs = age_controlled_pairs(&items);
        // (0 beats 1), (0 beats 4); item 2 is too far in time; item 1 vs 4 tie; q is alone.
        assert_eq!(pairs.len(), 2);
        assert!(pairs.iter().all(|&(w, _)| w == 0));
        assert_eq!(pairwise_accuracy(&pairs, &[1.0, 0.0, 0.0, 0.0, 0.0]), 1.0);
        assert_eq!(pairwise_accuracy(&pairs, &[0.0; 5]), 0.5);
    }

    #[test]
    fn intervals_hold_the_estimate_and_narrow_with_more_products() {
        let mut items = Vec::new();
        for p in 0..40 {
            for (v, d) in [(5, 0), (1, 10), (0, 20), (0, 30), (2, 40)] {
                items.push(j(&format!("p{p}"), v, d));
            }
        }
        // A ranking right on some products and wrong on others.
        let score: Vec<f64> = items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let p: usize = it.product_id[1..].parse().unwrap();
                let v = f64::from(it.helpful_votes);
                if p.is_multiple_of(3) {
                    -v
                } else {
                    v + (i % 2) as f64 * 0.1
                }
            })
            .collect();
        let all = evaluate(&items, &[("r".into(), score.clone())]);
        let r = &all.rankings[0];
        assert!(
            r.ndcg_at_5_ci[0] <= r.ndcg_at_5 && r.ndcg_at_5 <= r.ndcg_at_5_ci[1],
            "{r:?}"
        );
        assert!(
            r.pairwise_accuracy_ci[0] <= r.pairwise_accuracy
                && r.pairwise_accuracy <= r.pairwise_accuracy_ci[1],
            "{r:?}"
        );
        assert!(
            r.pairwise_accuracy_ci[0] < r.pairwise_accuracy_ci[1],
            "{r:?}"
        );
        let few = evaluate(&items[..50], &[("r".into(), score[..50].to_vec())]);
        let width = |c: [f64; 2]| c[1] - c[0];
        assert!(width(few.rankings[0].pairwise_accuracy_ci) > width(r.pairwise_accuracy_ci));
    }

    #[test]
    fn population_rules() {
        let mut items: Vec<_> = (0..5).map(|i| j("a", u32::from(i == 0), 0)).collect();
        items.extend((0..5).map(|_| j("b", 0, 0)));
        items.extend((0..4).map(|_| j("c", 3, 0)));
        assert_eq!(
            eligible_products(&items).len(),
            1,
            "b has no votes, c too few reviews"
        );
    }
}
