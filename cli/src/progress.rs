//! Progress bars on the terminal (hidden automatically when stderr is not a terminal).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reviews_stages::Progress;

/// One bar per step; concurrent shards of the same step share a bar.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, (ProgressBar, usize)>>,
    current: Mutex<Option<String>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            current: Mutex::new(None),
        }
    }
}

thread_local! {
    static STEP: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

impl Progress for Bars {
    fn start(&self, step: &str, total: Option<u64>) {
        let mut bars = self.bars.lock().expect("no poison");
        let entry = bars.entry(step.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>24} [{bar:30}] {human_pos}/{human_len} rows {per_sec} {elapsed}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(step.to_owned());
            (bar, 0)
        });
        entry.0.inc_length(total.unwrap_or(0));
        entry.1 += 1;
        *self.current.lock().expect("no poison") = Some(step.to_owned());
        STEP.with(|s| *s.borrow_mut() = Some(step.to_owned()));
    }

    fn advance(&self, n: u64) {
        let step = STEP
            .with(|s| s.borrow().clone())
            .or_else(|| self.current.lock().expect("no poison").clone());
        if let Some(step) = step
            && let Some((bar, _)) = self.bars.lock().expect("no poison").get(&step)
        {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        let step = STEP
            .with(|s| s.borrow().clone())
            .or_else(|| self.current.lock().expect("no poison").clone());
        if let Some(step) = step {
            let mut bars = self.bars.lock().expect("no poison");
            if let Some((bar, active)) = bars.get_mut(&step) {
                *active = active.saturating_sub(1);
                if *active == 0 {
                    bar.finish();
                }
            }
        }
    }
}
