//! Lexical features of a URL, from the string alone (no network): the URL-only features of
//! Hannousse & Yahiouche's phishing dataset, by their names and, where their published code
//! has a known quirk, its definition (see the README's URL table for each difference), and
//! more: character entropy and classes, the registrable domain and its public suffix.
//!
//! The URL is parsed by the `url` crate (WHATWG: IDNA/punycode hosts, IPv4/IPv6 literals,
//! userinfo, ports, percent-encoding); an input without a scheme (`example.com/login`) is read
//! as `http://…`. The registrable domain and the public suffix come from the `psl` crate (the
//! public-suffix list compiled in, ICANN and private sections). A string that does not parse
//! still gets every feature of the raw string; its host features are 0 and `parse_error` is 1.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

use super::{Derive, Kind, Raw, Value};

/// Hints of phishing kits in a URL (counted as substrings of the lowercase URL).
const HINTS: [&str; 16] = [
    "wp",
    "login",
    "includes",
    "admin",
    "content",
    "site",
    "images",
    "js",
    "alibaba",
    "css",
    "myaccount",
    "dropbox",
    "themes",
    "plugins",
    "signin",
    "view",
];

/// Top-level domains that phishing favours (the dataset authors' list).
const SUSPICIOUS_TLDS: [&str; 56] = [
    "fit",
    "tk",
    "gp",
    "ga",
    "work",
    "ml",
    "date",
    "wang",
    "men",
    "icu",
    "online",
    "click",
    "country",
    "stream",
    "download",
    "xin",
    "racing",
    "jetzt",
    "ren",
    "mom",
    "party",
    "review",
    "trade",
    "accountants",
    "science",
    "ninja",
    "xyz",
    "faith",
    "zip",
    "cricket",
    "win",
    "accountant",
    "realtor",
    "top",
    "christmas",
    "gdn",
    "link",
    "asia",
    "club",
    "la",
    "ae",
    "exposed",
    "pe",
    "go.id",
    "rs",
    "k12.pa.us",
    "or.kr",
    "ce.ke",
    "audio",
    "gob.pe",
    "gov.az",
    "website",
    "bj",
    "mx",
    "media",
    "sa.gov.au",
];

/// URL shorteners (substrings of the URL, as the dataset authors search them).
const SHORTENERS: [&str; 64] = [
    "bit.ly",
    "goo.gl",
    "shorte.st",
    "go2l.ink",
    "x.co",
    "ow.ly",
    "t.co",
    "tinyurl",
    "tr.im",
    "is.gd",
    "cli.gs",
    "yfrog.com",
    "migre.me",
    "ff.im",
    "tiny.cc",
    "url4.eu",
    "twit.ac",
    "su.pr",
    "twurl.nl",
    "snipurl.com",
    "short.to",
    "BudURL.com",
    "ping.fm",
    "post.ly",
    "Just.as",
    "bkite.com",
    "snipr.com",
    "fic.kr",
    "loopt.us",
    "doiop.com",
    "short.ie",
    "kl.am",
    "wp.me",
    "rubyurl.com",
    "om.ly",
    "to.ly",
    "bit.do",
    "lnkd.in",
    "db.tt",
    "qr.ae",
    "adf.ly",
    "bitly.com",
    "cur.lv",
    "tinyurl.com",
    "ity.im",
    "q.gs",
    "po.st",
    "bc.vc",
    "twitthis.com",
    "u.to",
    "j.mp",
    "buzurl.com",
    "cutt.us",
    "u.bb",
    "yourls.org",
    "prettylinkpro.com",
    "scrnch.me",
    "filoops.info",
    "vzturl.com",
    "qr.net",
    "1url.com",
    "tweez.me",
    "v.gd",
    "link.zip.net",
];

/// [`SHORTENERS`] and [`HINTS`] as automata: each list is searched in one pass over the URL
/// (a `contains` per entry would set up a substring searcher per entry and URL).
static SHORTENER_SEARCH: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(SHORTENERS).expect("a few dozen short patterns"));
static HINT_SEARCH: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(HINTS).expect("a few dozen short patterns"));

/// Occurrences of the hints in `lower`, each hint's counted as `str::matches` counts them:
/// left to right, not overlapping one another (`alibabalibaba` holds one `alibaba`).
fn hint_count(lower: &str) -> usize {
    let mut next = [0usize; HINTS.len()];
    let mut n = 0;
    // Overlapping matches come by end; a hint's own matches then come by start as well.
    for m in HINT_SEARCH.find_overlapping_iter(lower) {
        let p = m.pattern().as_usize();
        if m.start() >= next[p] {
            next[p] = m.end();
            n += 1;
        }
    }
    n
}

/// Characters counted one feature each: (name, character).
const COUNTED: [(&str, char); 18] = [
    ("nb_dots", '.'),
    ("nb_hyphens", '-'),
    ("nb_at", '@'),
    ("nb_qm", '?'),
    ("nb_and", '&'),
    ("nb_or", '|'),
    ("nb_eq", '='),
    ("nb_underscore", '_'),
    ("nb_tilde", '~'),
    ("nb_percent", '%'),
    ("nb_slash", '/'),
    ("nb_star", '*'),
    ("nb_colon", ':'),
    ("nb_comma", ','),
    ("nb_semicolumn", ';'),
    ("nb_dollar", '$'),
    ("nb_exclamation", '!'),
    ("nb_hash", '#'),
];

/// The numeric features after the counted characters, in output order.
const NUMERIC: [&str; 46] = [
    "length_url",
    "length_hostname",
    "ip",
    "nb_space",
    "nb_www",
    "nb_com",
    "nb_dslash",
    "http_in_path",
    "https_token",
    "ratio_digits_url",
    "ratio_digits_host",
    "punycode",
    "port",
    "tld_in_path",
    "tld_in_subdomain",
    "abnormal_subdomain",
    "nb_subdomains",
    "prefix_suffix",
    "shortening_service",
    "path_extension",
    "length_words_raw",
    "char_repeat",
    "shortest_words_raw",
    "shortest_word_host",
    "shortest_word_path",
    "longest_words_raw",
    "longest_word_host",
    "longest_word_path",
    "avg_words_raw",
    "avg_word_host",
    "avg_word_path",
    "phish_hints",
    "suspecious_tld",
    // Beyond the published set.
    "entropy_url",
    "ratio_letters_url",
    "ratio_upper_url",
    "ratio_special_url",
    "length_registered_domain",
    "suffix_labels",
    "suffix_known",
    "host_labels",
    "path_depth",
    "length_query",
    "nb_params",
    "userinfo",
    "parse_error",
];

/// Buckets of the hashed character trigrams of the host and of the rest of the URL.
const GRAM_BUCKETS: usize = 512;

/// Counts of the URL's character trigrams hashed into [`GRAM_BUCKETS`] buckets, for the host
/// and for the path and query: the spelling of names (`paypa1-secure`, random strings) that
/// counts of single characters miss.
fn trigram_buckets(text: &str, out: &mut [f64]) {
    out.fill(0.0);
    for w in text.as_bytes().windows(3) {
        let h =
            w.iter().fold(0x811c_9dc5u32, |h, &c| (h ^ u32::from(c.to_ascii_lowercase())).wrapping_mul(0x0100_0193));
        out[h as usize % GRAM_BUCKETS] += 1.0;
    }
}

/// How many numbers [`UrlFeatures::compute`] writes: the counted characters, the other
/// numeric features, the two trigram tables.
const NUMBERS: usize = COUNTED.len() + NUMERIC.len() + 2 * GRAM_BUCKETS;

/// The URL derivation of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlFeatures {
    /// The column holding the URL.
    pub column: String,
}

/// What the parser made of a URL: the parts the features read. The strings are slices of the
/// input and of one lower-case copy of the host (no string per part).
#[derive(Debug, Default)]
struct Parts<'a> {
    ok: bool,
    https: bool,
    /// The parsed URL (its host as the parser wrote it: [`Parts::host`]).
    url: Option<url::Url>,
    /// Whether the path ends in `.txt`, and its non-empty segments.
    path_txt: bool,
    path_depth: usize,
    query_len: usize,
    /// The public suffix (`com`, `blogspot.com`).
    suffix: &'a str,
    registrable_len: usize,
    suffix_known: bool,
    is_ip: bool,
    userinfo: bool,
    /// As the dataset's authors split a URL (tldextract: ICANN suffixes only): the suffix,
    /// the label before it, the labels before that, and the path: what follows the first `/`
    /// after the suffix's first occurrence in the URL (query included).
    icann_suffix: &'a str,
    icann_domain: &'a str,
    icann_subdomain: &'a str,
    their_path: &'a str,
}

impl Parts<'_> {
    /// The host as the parser wrote it (empty when the string did not parse).
    fn host(&self) -> &str {
        self.url.as_ref().and_then(|u| u.host_str()).unwrap_or("")
    }
}

/// The ICANN part of a public suffix: a private suffix (`blogspot.com`) loses labels from the
/// left until the list calls the rest an ICANN suffix (`com`). A slice of `suffix`.
fn icann_suffix(suffix: &str) -> &str {
    let mut s = suffix;
    loop {
        match psl::suffix(s.as_bytes()) {
            // The list's suffix is the end of `s`.
            Some(x) if x.typ() == Some(psl::Type::Private) => match s[s.len() - x.as_bytes().len()..].split_once('.') {
                Some((_, rest)) => s = rest,
                None => return "",
            },
            Some(x) if x.is_known() => return &s[s.len() - x.as_bytes().len()..],
            _ => return "",
        }
    }
}

/// Parse `raw`; `lower` receives the lower-case host the parts' host strings are slices of.
fn parse<'a>(raw: &'a str, lower: &'a mut String) -> Parts<'a> {
    let trimmed = raw.trim();
    let url = match url::Url::parse(trimmed) {
        Ok(u) if u.has_host() => u,
        // `example.com/login`: no scheme, read as http.
        Err(url::ParseError::RelativeUrlWithoutBase) => match url::Url::parse(&format!("http://{trimmed}")) {
            Ok(u) if u.has_host() => u,
            _ => return Parts::default(),
        },
        // No host (`javascript:`, `data:`, `mailto:`), or not a URL at all.
        _ => return Parts::default(),
    };
    let given = url.host_str().unwrap_or("").trim_end_matches('.');
    lower.clear();
    if given.is_ascii() {
        lower.push_str(given);
        lower.make_ascii_lowercase();
    } else {
        lower.push_str(&given.to_lowercase());
    }
    let host: &'a str = lower;
    let is_ip = matches!(url.host(), Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_)));
    let mut p = Parts {
        ok: true,
        https: url.scheme() == "https",
        path_txt: url.path().ends_with(".txt"),
        path_depth: url.path().split('/').filter(|s| !s.is_empty()).count(),
        query_len: url.query().map_or(0, str::len),
        is_ip,
        userinfo: !url.username().is_empty() || url.password().is_some(),
        ..Parts::default()
    };
    // The list's suffix and registrable domain are ends of `host`.
    let end = |n: usize| &host[host.len() - n..];
    if !is_ip {
        if let Some(d) = psl::domain(host.as_bytes()) {
            let suffix = d.suffix();
            p.suffix = end(suffix.as_bytes().len());
            p.suffix_known = suffix.is_known();
            p.registrable_len = d.as_bytes().len();
        } else if let Some(s) = psl::suffix(host.as_bytes()) {
            p.suffix = end(s.as_bytes().len());
            p.suffix_known = s.is_known();
        }
    }
    // The authors' split (tldextract, ICANN suffixes only; an IP address has no suffix).
    if !is_ip {
        p.icann_suffix = icann_suffix(p.suffix);
        let before = host.strip_suffix(p.icann_suffix).map(|h| h.trim_end_matches('.')).unwrap_or("");
        let (sub, dom) = before.rsplit_once('.').unwrap_or(("", before));
        p.icann_domain = dom;
        p.icann_subdomain = sub;
    } else {
        p.icann_domain = host;
    }
    let from = find(trimmed, p.icann_suffix).unwrap_or(0);
    p.their_path = trimmed[from..].split_once('/').map_or("", |(_, rest)| rest);
    p.url = Some(url);
    p
}

/// The site a URL belongs to: its registrable domain (`example.co.uk`), else its host (an IP
/// address), else the trimmed string itself.
pub fn site(url: &str) -> String {
    let mut lower = String::new();
    let p = parse(url, &mut lower);
    let host = p.host();
    if p.registrable_len > 0 {
        host[host.len() - p.registrable_len..].to_owned()
    } else if !host.is_empty() {
        host.to_owned()
    } else {
        url.trim().to_owned()
    }
}

/// The bytes words are split at: `- . / ? = @ & % : _` (all ASCII, so a split never falls
/// inside a character).
const SEPARATORS: [bool; 256] = {
    let mut t = [false; 256];
    let seps = b"-./?=@&%:_";
    let mut i = 0;
    while i < seps.len() {
        t[seps[i] as usize] = true;
        i += 1;
    }
    t
};

/// Appends the words of a part to `out`: split at [`SEPARATORS`], empty ones dropped, lower
/// case (a word already lower-case ASCII is borrowed).
fn words<'a>(text: &'a str, out: &mut Vec<Cow<'a, str>>) {
    let mut word = |w: &'a str| {
        if w.is_empty() {
        } else if w.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
            out.push(Cow::Borrowed(w));
        } else {
            out.push(Cow::Owned(w.to_lowercase()));
        }
    };
    let mut start = 0;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if SEPARATORS[usize::from(b)] {
            word(&text[start..i]);
            start = i + 1;
        }
    }
    word(&text[start..]);
}

/// Characters in `text` (its length when ASCII).
fn chars(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

/// (shortest, longest, average) length of words; zeros for none.
fn stats<'w>(ws: impl Iterator<Item = &'w Cow<'w, str>> + Clone) -> (f64, f64, f64) {
    let lens = ws.map(|w| chars(w));
    let (n, min, max, sum) =
        lens.fold((0usize, usize::MAX, 0, 0usize), |(n, a, b, s), l| (n + 1, a.min(l), b.max(l), s + l));
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    (min as f64, max as f64, sum as f64 / n as f64)
}

/// Runs of 2 to 5 equal characters in each word, every window counted (the authors'
/// `char_repeat`).
fn char_repeat(ws: &[Cow<'_, str>]) -> usize {
    fn windows<T: PartialEq>(c: &[T]) -> usize {
        (2..=5).map(|k| c.windows(k).filter(|s| s.iter().all(|x| *x == s[0])).count()).sum()
    }
    ws.iter()
        .map(|w| if w.is_ascii() { windows(w.as_bytes()) } else { windows(&w.chars().collect::<Vec<char>>()) })
        .sum()
}

/// `(http[s]?://(w[w]?|\d))([w]?(\d|-))` found anywhere in the URL.
fn abnormal_subdomain(url: &str) -> bool {
    let b = url.as_bytes();
    let digit_or_dash = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'-');
    let w = |i: usize| b.get(i) == Some(&b'w');
    for at in HTTP.find_iter(b) {
        let mut s = at + 4;
        if b.get(s) == Some(&b's') {
            s += 1;
        }
        if !url[s..].starts_with("://") {
            continue;
        }
        s += 3;
        // The first group: `w`, `ww` or a digit; then an optional `w`; then a digit or `-`.
        let firsts: &[usize] = if b.get(s).is_some_and(u8::is_ascii_digit) {
            &[1]
        } else if w(s) && w(s + 1) {
            &[1, 2]
        } else if w(s) {
            &[1]
        } else {
            &[]
        };
        for &f in firsts {
            let after = s + f;
            if digit_or_dash(after) || (w(after) && digit_or_dash(after + 1)) {
                return true;
            }
        }
    }
    false
}

/// `https?://[^-]+-[^-]+/` found anywhere in the URL.
fn prefix_suffix(url: &str) -> bool {
    for at in HTTP.find_iter(url.as_bytes()) {
        let rest = &url[at + 4..];
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let Some(rest) = rest.strip_prefix("://") else { continue };
        let Some(dash) = rest.find('-') else { continue };
        if dash == 0 {
            continue;
        }
        let after = &rest[dash + 1..];
        let segment = after.split('-').next().unwrap_or("");
        if segment.char_indices().any(|(i, c)| c == '/' && i > 0) {
            return true;
        }
    }
    false
}

/// An explicit port in the authority, as the authors' regex reads it: a lowercase scheme,
/// `://`, an optional userinfo, a host, then `:` and digits.
fn explicit_port(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase())
        || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
    {
        return false;
    }
    let host_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~%".contains(c);
    let user_char = |c: char| host_char(c) || "!$&'()*+,;=".contains(c);
    // An optional userinfo: user characters up to an `@`.
    let after_user = match rest.find(|c: char| !user_char(c)) {
        Some(i) if rest[i..].starts_with('@') && i > 0 => &rest[i + 1..],
        _ => rest,
    };
    let host_end = if after_user.starts_with('[') {
        after_user.find(']').map(|i| i + 1)
    } else {
        after_user.find(|c: char| !host_char(c)).filter(|&i| i > 0).or(Some(after_user.len()).filter(|&l| l > 0))
    };
    let Some(end) = host_end else { return false };
    after_user[end..].strip_prefix(':').is_some_and(|p| p.starts_with(|c: char| c.is_ascii_digit()))
}

/// Where "http" occurs (it cannot overlap itself, so these are `match_indices`' matches).
static HTTP: LazyLock<memchr::memmem::Finder<'static>> = LazyLock::new(|| memchr::memmem::Finder::new("http"));

/// Where `needle` first occurs in `hay` (an empty needle at 0, as `str::find` says): the
/// needle's first byte by `memchr`, then the rest compared. For a URL's few dozen bytes this
/// beats setting up a substring searcher per call.
fn find(hay: &str, needle: &str) -> Option<usize> {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = needle.split_first() else { return Some(0) };
    let mut at = 0;
    while let Some(i) = memchr::memchr(first, &hay[at..]) {
        let s = at + i;
        if hay[s + 1..].starts_with(rest) {
            return Some(s);
        }
        at = s + 1;
    }
    None
}

/// Whether `needle` occurs in `hay` (an empty needle always does, as in `str::contains`).
fn contains(hay: &str, needle: &str) -> bool {
    find(hay, needle).is_some()
}

/// Shannon entropy (bits) of an ASCII string's characters from its byte counts: the same
/// terms in the same order as [`entropy`], so the same bits.
fn entropy_ascii(bytes: &[usize; 256], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    // Most characters of a URL occur a few times: each term is worked out once per count.
    let mut terms = [f64::NAN; 16];
    let term = |k: usize| {
        let p = k as f64 / n as f64;
        -p * p.log2()
    };
    bytes[..128]
        .iter()
        .filter(|&&k| k > 0)
        .map(|&k| match terms.get_mut(k) {
            Some(t) if !t.is_nan() => *t,
            Some(t) => {
                *t = term(k);
                *t
            }
            None => term(k),
        })
        .sum()
}

/// Shannon entropy (bits) of the characters. Summed in character order: a hash map's order
/// would change the last bit from run to run.
fn entropy(text: &str) -> f64 {
    let mut ascii = [0usize; 128];
    let mut other: std::collections::BTreeMap<char, usize> = std::collections::BTreeMap::new();
    let mut n = 0usize;
    for c in text.chars() {
        match ascii.get_mut(c as usize) {
            Some(k) => *k += 1,
            None => *other.entry(c).or_insert(0) += 1,
        }
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    ascii.iter().chain(other.values()).filter(|&&k| k > 0).map(|&k| k as f64 / n as f64).map(|p| -p * p.log2()).sum()
}

/// Occurrences of `pat` in `text`, left to right and not overlapping (as `str::matches`
/// counts them), without setting up a substring searcher for a few bytes.
fn occurrences(text: &str, pat: &str) -> usize {
    let (t, p) = (text.as_bytes(), pat.as_bytes());
    if p.is_empty() {
        return text.matches(pat).count();
    }
    let (mut i, mut n) = (0, 0);
    while i + p.len() <= t.len() {
        if t[i..].starts_with(p) {
            n += 1;
            i += p.len();
        } else {
            i += 1;
        }
    }
    n
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl UrlFeatures {
    /// Every numeric feature of one URL, in [`Derive::outputs`] order.
    pub fn features(&self, url: &str) -> Vec<f64> {
        let mut out = vec![0.0; NUMBERS];
        self.compute(url, &mut out);
        out
    }

    /// The numeric features into `out` ([`NUMBERS`] of them), and the public suffix (when the
    /// list knows it).
    fn compute(&self, url: &str, out: &mut [f64]) -> Option<String> {
        let mut lower_host = String::new();
        let p = parse(url, &mut lower_host);
        let host = p.host();
        let ascii = url.is_ascii();
        let lower: Cow<'_, str> = if ascii && !url.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Borrowed(url)
        } else {
            Cow::Owned(url.to_lowercase())
        };
        let n_chars = if ascii { url.len() } else { url.chars().count() };
        // Every counted character is ASCII, and an ASCII byte in UTF-8 is always that character.
        let mut bytes = [0usize; 256];
        for &b in url.as_bytes() {
            bytes[usize::from(b)] += 1;
        }
        let count = |c: char| bytes[c as usize];
        let range = |a: u8, b: u8| bytes[usize::from(a)..=usize::from(b)].iter().sum::<usize>();
        // Character classes: from the byte counts when the URL is ASCII.
        let (letters, upper, digits_url) =
            (range(b'a', b'z') + range(b'A', b'Z'), range(b'A', b'Z'), range(b'0', b'9'));
        let (letters, upper, special) = if ascii {
            (letters, upper, n_chars - letters - digits_url)
        } else {
            (
                url.chars().filter(|c| c.is_alphabetic()).count(),
                url.chars().filter(|c| c.is_uppercase()).count(),
                url.chars().filter(|c| !c.is_alphanumeric()).count(),
            )
        };
        let (counted, out) = out.split_at_mut(COUNTED.len());
        counted.iter_mut().zip(COUNTED).for_each(|(o, (_, c))| *o = count(c) as f64);
        let (numeric, grams) = out.split_at_mut(NUMERIC.len());

        // All words: the domain's, the path's, the subdomain's (the host's are the first and
        // the last of these).
        let mut all: Vec<Cow<'_, str>> = Vec::with_capacity(32);
        words(p.icann_domain, &mut all);
        let domain = all.len();
        words(p.their_path, &mut all);
        let path = all.len();
        words(p.icann_subdomain, &mut all);
        let (s_all, l_all, a_all) = stats(all.iter());
        let (s_host, l_host, a_host) = stats(all[..domain].iter().chain(&all[path..]));
        let (s_path, l_path, a_path) = stats(all[domain..path].iter());
        // ASCII digits are single bytes in UTF-8.
        let digits = |t: &str| t.bytes().filter(u8::is_ascii_digit).count();
        let host_chars = chars(host);
        // The authors' path keeps its leading `/`: it adds no "http" and no suffix (which
        // holds no `/`) to what the path itself holds.
        let path_lower: Cow<'_, str> = if p.their_path.bytes().any(|b| !b.is_ascii() || b.is_ascii_uppercase()) {
            Cow::Owned(p.their_path.to_lowercase())
        } else {
            Cow::Borrowed(p.their_path)
        };
        let last_dslash = url.rfind("//");
        let dots = count('.');
        let flag = |b: bool| f64::from(u8::from(b));
        let tld = p.icann_suffix;
        let values = [
            n_chars as f64,
            host_chars as f64,
            flag(p.is_ip),
            (count(' ') + occurrences(url, "%20")) as f64,
            all.iter().filter(|w| occurrences(w, "www") > 0).count() as f64,
            all.iter().filter(|w| occurrences(w, "com") > 0).count() as f64,
            flag(last_dslash.is_some_and(|i| i > 6)),
            occurrences(p.their_path, "http") as f64,
            flag(!p.https),
            ratio(digits_url, n_chars),
            ratio(digits(host), host_chars),
            // As published: `http://xn--` only (their `https` branch repeats `http`).
            flag(url.starts_with("http://xn--")),
            flag(explicit_port(url)),
            // As published: an empty suffix (an IP address) is "in" every string.
            flag(contains(&path_lower, tld)),
            flag(contains(p.icann_subdomain, tld)),
            flag(abnormal_subdomain(url)),
            match dots {
                1 => 1.0,
                2 => 2.0,
                _ => 3.0,
            },
            flag(prefix_suffix(url)),
            flag(SHORTENER_SEARCH.is_match(url)),
            flag(p.path_txt),
            all.len() as f64,
            char_repeat(&all) as f64,
            s_all,
            s_host,
            s_path,
            l_all,
            l_host,
            l_path,
            a_all,
            a_host,
            a_path,
            hint_count(&lower) as f64,
            flag(SUSPICIOUS_TLDS.contains(&tld)),
            if ascii { entropy_ascii(&bytes, n_chars) } else { entropy(url) },
            ratio(letters, n_chars),
            ratio(upper, n_chars),
            ratio(special, n_chars),
            p.registrable_len as f64,
            if tld.is_empty() { 0.0 } else { tld.split('.').count() as f64 },
            flag(p.suffix_known),
            if host.is_empty() { 0.0 } else { host.split('.').count() as f64 },
            p.path_depth as f64,
            p.query_len as f64,
            url.split_once('?').map_or(0, |(_, q)| q.split('&').filter(|s| !s.is_empty()).count()) as f64,
            flag(p.userinfo),
            flag(!p.ok),
        ];
        numeric.copy_from_slice(&values);
        let trimmed = url.trim();
        let rest = match find(trimmed, host) {
            Some(at) if !host.is_empty() => &trimmed[at + host.len()..],
            _ => url,
        };
        let (host_grams, rest_grams) = grams.split_at_mut(GRAM_BUCKETS);
        trigram_buckets(host, host_grams);
        trigram_buckets(rest, rest_grams);
        (p.suffix_known && !p.suffix.is_empty()).then(|| p.suffix.to_owned())
    }

    fn prefix(&self) -> String {
        if self.column == "url" {
            String::new()
        } else {
            format!("{}.", self.column)
        }
    }
}

impl Derive for UrlFeatures {
    fn inputs(&self) -> Vec<(String, Kind)> {
        vec![(self.column.clone(), Kind::Categorical)]
    }

    fn outputs(&self) -> Vec<(String, Kind)> {
        let prefix = self.prefix();
        let mut out: Vec<(String, Kind)> =
            COUNTED.iter().map(|(n, _)| *n).chain(NUMERIC).map(|n| (format!("{prefix}{n}"), Kind::Numeric)).collect();
        for part in ["host", "rest"] {
            out.extend((0..GRAM_BUCKETS).map(|i| (format!("{prefix}{part}_trigram_{i}"), Kind::Numeric)));
        }
        out.push((format!("{prefix}tld"), Kind::Categorical));
        out
    }

    fn derive(&self, inputs: &[Raw<'_>], out: &mut [Value]) -> Result<(), (usize, String)> {
        let mut numbers = vec![0.0; NUMBERS];
        let (slots, rest) = out.split_at_mut(NUMBERS);
        self.derive_direct(inputs, &mut numbers, rest)?;
        slots.iter_mut().zip(numbers).for_each(|(slot, v)| *slot = Value::Number(v));
        Ok(())
    }

    /// Every output but the last (the public suffix, a category) is a number.
    fn direct(&self) -> usize {
        NUMBERS
    }

    fn derive_direct(
        &self,
        inputs: &[Raw<'_>],
        numbers: &mut [f64],
        rest: &mut [Value],
    ) -> Result<(), (usize, String)> {
        let text = match inputs[0] {
            Raw::Text(t) => t,
            Raw::Missing => "",
            Raw::Number(_) => return Err((0, "expected a URL (text), found a number".into())),
        };
        rest[0] = self.compute(text, numbers).map_or(Value::Missing, Value::Text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, name: &str) -> f64 {
        let d = UrlFeatures { column: "url".into() };
        let names = d.outputs();
        d.features(url)[names.iter().position(|(n, _)| n == name).unwrap_or_else(|| panic!("{name}"))]
    }

    #[test]
    fn the_published_values_of_two_rows() {
        // Rows 1 and 2 of the Hannousse dataset.
        let u = "http://www.crestonwood.com/router.php";
        for (name, v) in [
            ("length_url", 37.0),
            ("length_hostname", 19.0),
            ("nb_dots", 3.0),
            ("nb_slash", 3.0),
            ("nb_www", 1.0),
            ("nb_com", 0.0),
            ("https_token", 1.0),
            ("nb_subdomains", 3.0),
            ("length_words_raw", 4.0),
            ("char_repeat", 4.0),
            ("shortest_words_raw", 3.0),
            ("longest_words_raw", 11.0),
            ("longest_word_path", 6.0),
            ("avg_words_raw", 5.75),
            ("avg_word_host", 7.0),
            ("avg_word_path", 4.5),
        ] {
            assert_eq!(get(u, name), v, "{name}");
        }
        let u = "http://shadetreetechnology.com/V4/validation/a111aedc8ae390eabcfa130e041a10a4";
        assert_eq!(get(u, "length_hostname"), 23.0);
        assert!((get(u, "ratio_digits_url") - 17.0 / 77.0).abs() < 1e-12);
        assert_eq!(get(u, "nb_subdomains"), 1.0);
    }

    #[test]
    fn hosts_of_every_kind_parse() {
        assert_eq!(get("example.com/login", "parse_error"), 0.0, "no scheme");
        assert_eq!(get("example.com/login", "length_hostname"), 11.0);
        assert_eq!(get("http://192.168.0.1/a", "ip"), 1.0);
        assert_eq!(get("http://[::1]:8080/a", "ip"), 1.0);
        assert_eq!(get("http://[::1]:8080/a", "port"), 1.0);
        assert_eq!(get("http://user:pw@example.com/", "userinfo"), 1.0);
        assert_eq!(get("https://bücher.example.co.uk/x", "suffix_labels"), 2.0);
        assert_eq!(get("https://bücher.example.co.uk/x", "length_registered_domain"), 13.0);
        assert_eq!(get("http://a.b.blogspot.com/%zz", "parse_error"), 0.0);
        for bad in ["", "   ", "javascript:alert(1)", "data:text/html,hi", "http://", "http://exa mple.com", "\u{0}"] {
            assert_eq!(get(bad, "parse_error"), 1.0, "{bad:?}");
        }
    }

    #[test]
    fn quirky_published_definitions() {
        assert_eq!(get("http://98.126.214.77/ap/signin", "abnormal_subdomain"), 1.0);
        assert_eq!(get("http://www.example.com/", "abnormal_subdomain"), 0.0);
        assert_eq!(get("http://www-1.example.com/", "abnormal_subdomain"), 1.0);
        assert_eq!(get("http://my-site.com/a", "prefix_suffix"), 1.0);
        assert_eq!(get("http://mysite.com/a-b", "prefix_suffix"), 0.0);
        assert_eq!(get("http://example.com:8080/", "port"), 1.0);
        assert_eq!(get("http://example.com/", "port"), 0.0);
        assert_eq!(get("http://microsoft.com/", "shortening_service"), 1.0, "`t.co` inside, as published");
        assert_eq!(get("http://x.com/a%20b c", "nb_space"), 2.0);
    }
}
