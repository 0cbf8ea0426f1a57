//! Flow features of a Zeek `conn.log` record, from its raw fields alone.
//!
//! - bytes and packets per direction with their ratios, mean packet size per direction,
//!   throughput;
//! - a 0/1 flag per field Zeek may leave unset (`duration`, `orig_bytes`, `resp_bytes`,
//!   `service`, `history`): imputation fills the value, the flag keeps the fact;
//! - `history` as one count per letter (Zeek repeats a letter for repeated events; upper case
//!   is the originator, lower case the responder) and its length;
//! - the responder port as a category when it is a common service port, its class otherwise
//!   (`well_known` < 1024 ≤ `registered` < 49152 ≤ `dynamic`); the originator port's class.
//!
//! `proto`, `service` and `conn_state` are plain categorical columns of the schema, and the
//! raw counts plain numeric ones. Identifiers are not read: `ts`, `uid`, the addresses, and
//! `local_orig`/`local_resp` (see the dataset README for why).

use serde::{Deserialize, Serialize};

use super::{number, Derive, Kind, Raw, Value};

/// Zeek's history letters (see its `conn.log` documentation), originator then responder.
pub const HISTORY_LETTERS: &str = "SHADFRCGTWIQshadfrcgtwiq^";

/// Per byte: its index in [`HISTORY_LETTERS`], or the slot past them for any other byte.
const LETTER_SLOT: [u8; 256] = {
    let letters = HISTORY_LETTERS.as_bytes();
    let mut table = [letters.len() as u8; 256];
    let mut i = 0;
    while i < letters.len() {
        table[letters[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Service ports kept as their own category; any other port is only its class.
pub const COMMON_PORTS: [u16; 40] = [
    20, 21, 22, 23, 25, 53, 67, 68, 69, 80, 110, 111, 123, 135, 137, 138, 139, 143, 161, 162, 389, 443, 445, 465, 514,
    587, 993, 995, 1433, 1900, 3306, 3389, 5060, 5353, 5355, 5555, 5900, 8080, 8443, 8888,
];

/// [`COMMON_PORTS`] as text, the categories they become.
const COMMON_PORT_NAMES: [&str; 40] = [
    "20", "21", "22", "23", "25", "53", "67", "68", "69", "80", "110", "111", "123", "135", "137", "138", "139", "143",
    "161", "162", "389", "443", "445", "465", "514", "587", "993", "995", "1433", "1900", "3306", "3389", "5060",
    "5353", "5355", "5555", "5900", "8080", "8443", "8888",
];

/// The raw fields read, in order.
const INPUTS: [(&str, Kind); 12] = [
    ("duration", Kind::Numeric),
    ("orig_bytes", Kind::Numeric),
    ("resp_bytes", Kind::Numeric),
    ("orig_pkts", Kind::Numeric),
    ("resp_pkts", Kind::Numeric),
    ("orig_ip_bytes", Kind::Numeric),
    ("resp_ip_bytes", Kind::Numeric),
    ("missed_bytes", Kind::Numeric),
    ("history", Kind::Categorical),
    ("service", Kind::Categorical),
    ("id.orig_p", Kind::Numeric),
    ("id.resp_p", Kind::Numeric),
];

const NUMERIC_OUT: [&str; 15] = [
    "total_ip_bytes",
    "total_pkts",
    "orig_ip_bytes_share",
    "orig_bytes_share",
    "orig_pkts_share",
    "orig_mean_pkt_size",
    "resp_mean_pkt_size",
    "ip_bytes_per_second",
    "pkts_per_second",
    "duration_missing",
    "orig_bytes_missing",
    "resp_bytes_missing",
    "service_missing",
    "history_missing",
    "history_length",
];

/// The `conn.log` derivation. Its port list is stored in the bundle, so a model keeps the
/// categories it was trained with even if the default list changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZeekConn {
    pub common_ports: Vec<u16>,
}

impl Default for ZeekConn {
    fn default() -> Self {
        ZeekConn { common_ports: COMMON_PORTS.to_vec() }
    }
}

/// `(a + 1) / (a + b + 2)`: the originator's share, 0.5 when both sides are zero.
fn share(a: f64, b: f64) -> f64 {
    (a + 1.0) / (a + b + 2.0)
}

fn port_class(port: f64) -> &'static str {
    match port {
        p if p < 1024.0 => "well_known",
        p if p < 49152.0 => "registered",
        _ => "dynamic",
    }
}

impl Derive for ZeekConn {
    fn inputs(&self) -> Vec<(String, Kind)> {
        INPUTS.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    }

    fn outputs(&self) -> Vec<(String, Kind)> {
        let mut out: Vec<(String, Kind)> = NUMERIC_OUT.iter().map(|n| (n.to_string(), Kind::Numeric)).collect();
        out.extend(HISTORY_LETTERS.chars().map(|c| (format!("history_{c}"), Kind::Numeric)));
        out.push(("resp_port_class".into(), Kind::Categorical));
        out.push(("orig_port_class".into(), Kind::Categorical));
        out
    }

    fn derive(&self, inputs: &[Raw<'_>], out: &mut [Value]) -> Result<(), (usize, String)> {
        let num = |i: usize| number(inputs[i]).map_err(|m| (i, m));
        let text = |i: usize| match inputs[i] {
            Raw::Text(t) if !t.is_empty() && t != "-" => Some(t),
            _ => None,
        };
        let (duration, orig_bytes, resp_bytes) = (num(0)?, num(1)?, num(2)?);
        let (orig_pkts, resp_pkts) = (num(3)?.unwrap_or(0.0), num(4)?.unwrap_or(0.0));
        let (orig_ip, resp_ip) = (num(5)?.unwrap_or(0.0), num(6)?.unwrap_or(0.0));
        num(7)?;
        let history = text(8);
        let service = text(9);
        let (orig_port, resp_port) = (num(10)?, num(11)?);

        let flag = |missing: bool| Value::Number(f64::from(u8::from(missing)));
        let per = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
        let rate = |n: f64| match duration {
            Some(d) if d > 0.0 => Value::Number(n / d),
            _ => Value::Missing,
        };
        let values = [
            Value::Number(orig_ip + resp_ip),
            Value::Number(orig_pkts + resp_pkts),
            Value::Number(share(orig_ip, resp_ip)),
            Value::Number(share(orig_bytes.unwrap_or(0.0), resp_bytes.unwrap_or(0.0))),
            Value::Number(share(orig_pkts, resp_pkts)),
            Value::Number(per(orig_ip, orig_pkts)),
            Value::Number(per(resp_ip, resp_pkts)),
            rate(orig_ip + resp_ip),
            rate(orig_pkts + resp_pkts),
            flag(duration.is_none()),
            flag(orig_bytes.is_none()),
            flag(resp_bytes.is_none()),
            flag(service.is_none()),
            flag(history.is_none()),
            Value::Number(history.map_or(0, str::len) as f64),
        ];
        let n = values.len();
        for (slot, v) in out.iter_mut().zip(values) {
            *slot = v;
        }
        let mut counts = [0u32; HISTORY_LETTERS.len() + 1];
        for b in history.unwrap_or("").bytes() {
            counts[LETTER_SLOT[b as usize] as usize] += 1;
        }
        let counts = &counts[..HISTORY_LETTERS.len()];
        for (slot, &c) in out[n..].iter_mut().zip(counts) {
            *slot = Value::Number(f64::from(c));
        }
        let at = n + counts.len();
        out[at] = match resp_port {
            None => Value::Missing,
            Some(p) if self.common_ports.iter().any(|&c| f64::from(c) == p) => {
                match COMMON_PORTS.iter().position(|&c| f64::from(c) == p) {
                    Some(j) => Value::Static(COMMON_PORT_NAMES[j]),
                    // A bundle's own list may name other ports.
                    None => Value::Text(format!("{p}")),
                }
            }
            Some(p) => Value::Static(port_class(p)),
        };
        out[at + 1] = orig_port.map_or(Value::Missing, |p| Value::Static(port_class(p)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive(fields: [&str; 12]) -> Vec<Value> {
        let d = ZeekConn::default();
        let raw: Vec<Raw> = fields.iter().map(|f| if *f == "-" { Raw::Missing } else { Raw::Text(f) }).collect();
        let mut out = vec![Value::Missing; d.outputs().len()];
        d.derive(&raw, &mut out).unwrap();
        out
    }

    impl Value {
        fn raw_text(&self) -> Option<&str> {
            match self.raw() {
                Raw::Text(t) => Some(t),
                _ => None,
            }
        }
    }

    #[test]
    fn port_names_are_the_ports() {
        for (p, n) in COMMON_PORTS.iter().zip(COMMON_PORT_NAMES) {
            assert_eq!(p.to_string(), n);
        }
    }

    fn get<'a>(out: &'a [Value], name: &str) -> &'a Value {
        let names = ZeekConn::default().outputs();
        &out[names.iter().position(|(n, _)| n == name).unwrap()]
    }

    #[test]
    fn a_tcp_session() {
        let out = derive(["2.0", "100", "300", "4", "6", "260", "620", "0", "ShADadFf", "http", "50000", "80"]);
        assert_eq!(get(&out, "total_ip_bytes"), &Value::Number(880.0));
        assert_eq!(get(&out, "orig_mean_pkt_size"), &Value::Number(65.0));
        assert_eq!(get(&out, "ip_bytes_per_second"), &Value::Number(440.0));
        assert_eq!(get(&out, "history_S"), &Value::Number(1.0));
        assert_eq!(get(&out, "history_d"), &Value::Number(1.0));
        assert_eq!(get(&out, "history_length"), &Value::Number(8.0));
        assert_eq!(get(&out, "resp_port_class").raw_text(), Some("80"));
        assert_eq!(get(&out, "orig_port_class").raw_text(), Some("dynamic"));
        assert_eq!(get(&out, "service_missing"), &Value::Number(0.0));
    }

    #[test]
    fn a_one_packet_probe() {
        let out = derive(["-", "-", "-", "1", "0", "40", "0", "0", "S", "-", "49295", "32207"]);
        assert_eq!(get(&out, "duration_missing"), &Value::Number(1.0));
        assert_eq!(get(&out, "service_missing"), &Value::Number(1.0));
        assert_eq!(get(&out, "ip_bytes_per_second"), &Value::Missing);
        assert_eq!(get(&out, "resp_port_class").raw_text(), Some("registered"));
        assert_eq!(get(&out, "resp_mean_pkt_size"), &Value::Number(0.0));
    }

    #[test]
    fn a_bad_count_names_its_input() {
        let d = ZeekConn::default();
        let mut raw = vec![Raw::Missing; 12];
        raw[3] = Raw::Text("lots");
        let mut out = vec![Value::Missing; d.outputs().len()];
        assert_eq!(d.derive(&raw, &mut out).unwrap_err().0, 3);
    }
}
