//! The judging benchmarks' solution and tests, shared by the engine and HTTP variants.

/// The C++ solution: sort and sum the numbers, print the sum and the median.
pub const SOLUTION: &str = r#"
#include <bits/stdc++.h>
int main() {
    std::ios::sync_with_stdio(false);
    int n;
    std::cin >> n;
    std::vector<long long> xs(n);
    for (auto &x : xs) std::cin >> x;
    std::sort(xs.begin(), xs.end());
    long long sum = std::accumulate(xs.begin(), xs.end(), 0LL);
    std::cout << sum << ' ' << (n ? xs[n / 2] : 0) << '\n';
}
"#;

/// Test `i`: its name, 200 * (i + 1) pseudo-random numbers, and their sum and median.
pub fn test_data(i: usize) -> (String, String, String) {
    let n = 200 * (i + 1);
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ i as u64;
    let mut xs: Vec<i64> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1_000_000) as i64
        })
        .collect();
    let input = format!(
        "{n}\n{}\n",
        xs.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
    );
    xs.sort();
    let expected = format!("{} {}\n", xs.iter().sum::<i64>(), xs[n / 2]);
    (format!("{:02}", i + 1), input, expected)
}
