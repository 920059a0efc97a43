//! CPU time of this process's threads, grouped by thread name (Linux `/proc`), for benches
//! that report cores used rather than wall time: name a runtime's threads, take a
//! [`ThreadCpu`] before and after the measured window, and subtract.

use std::collections::HashMap;

/// CPU seconds (user + system) of each live thread of this process, summed by thread name.
/// Empty where `/proc/self/task` is unreadable (not Linux).
#[derive(Debug, Clone, Default)]
pub struct ThreadCpu(HashMap<String, f64>);

impl ThreadCpu {
    /// Reads the current figures.
    pub fn now() -> Self {
        let ticks_per_sec = 100.0; // USER_HZ on Linux.
        let mut out = HashMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Self(out);
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // "tid (comm) state ...": after the closing parenthesis, utime and stime are the
            // 12th and 13th fields.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let (Some(name), Some(rest)) = (stat.get(open + 1..close), stat.get(close + 2..))
            else {
                continue;
            };
            let fields: Vec<&str> = rest.split(' ').collect();
            let ticks: f64 = [11, 12]
                .iter()
                .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
                .sum();
            *out.entry(name.to_owned()).or_insert(0.0) += ticks / ticks_per_sec;
        }
        Self(out)
    }

    /// CPU seconds spent since `earlier` by the threads whose name starts with `prefix`.
    pub fn since(&self, earlier: &ThreadCpu, prefix: &str) -> f64 {
        let sum = |cpu: &ThreadCpu| -> f64 {
            cpu.0
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, s)| s)
                .sum()
        };
        sum(self) - sum(earlier)
    }
}
