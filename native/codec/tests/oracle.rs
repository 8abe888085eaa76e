//! OTP is the oracle: `tests/oracle.escript` generates random terms from a
//! fixed seed and checks that every answer of ours decodes, in OTP itself,
//! to a term `=:=` to the original.
//!
//! For each term OTP sends, this side decodes the ETF, writes JSON, parses the
//! JSON back, checks that both trees and the eetf bridge agree, and answers
//! with (1) the ETF of the re-parsed term and (2) an encoding with atom cache
//! references plus the atoms they refer to.
//!
//! `ORACLE_SEED` and `ORACLE_TERMS` override the seed and the number of terms
//! (default 100,000); a failure prints the seed to reproduce it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use erlang_cnode_codec::{etf, from_eetf, json, to_eetf, Term};

const DEFAULT_SEED: u64 = 20_261_127;
const DEFAULT_TERMS: u64 = 100_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn read_frame(input: &mut impl Read) -> Vec<u8> {
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .expect("oracle closed its output early");
    let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
    input
        .read_exact(&mut frame)
        .expect("oracle frame truncated");
    frame
}

fn write_frame(output: &mut impl Write, frame: &[u8]) {
    output
        .write_all(&(frame.len() as u32).to_be_bytes())
        .expect("oracle stdin closed");
    output.write_all(frame).expect("oracle stdin closed");
    output.flush().expect("oracle stdin closed");
}

/// Everything this side does with one term; the bytes OTP should decode back.
fn answer(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let decoded = etf::decode(bytes).map_err(|e| format!("decode: {e}"))?;
    let text = json::to_string(&decoded).map_err(|e| format!("to JSON: {e}"))?;
    let parsed = json::parse(&text).map_err(|e| format!("parse {text}: {e}"))?;
    if parsed != decoded {
        return Err(format!("JSON round trip changed the term: {text}"));
    }
    let bridged = to_eetf(&parsed).map_err(|e| format!("to eetf: {e}"))?;
    if from_eetf(&bridged).map_err(|e| format!("from eetf: {e}"))? != parsed {
        return Err("eetf round trip changed the term".into());
    }
    let ours = etf::encode(&parsed).map_err(|e| format!("encode: {e}"))?;
    if etf::decode(&ours).map_err(|e| format!("decode our own: {e}"))? != decoded {
        return Err("our own encoding decodes to another term".into());
    }

    let mut atom_refs = Vec::new();
    let mut with_refs = Vec::new();
    etf::encode_with_atom_refs(&parsed, &mut with_refs, &mut atom_refs)
        .map_err(|e| format!("encode with refs: {e}"))?;
    let again = etf::Decoder::new(&with_refs)
        .with_atom_refs(&atom_refs)
        .next_term()
        .map_err(|e| format!("decode refs: {e}"))?;
    if again != decoded {
        return Err("atom cache encoding decodes to another term".into());
    }

    let mut reply = vec![0];
    reply.extend_from_slice(&(ours.len() as u32).to_be_bytes());
    reply.extend_from_slice(&ours);
    reply.push(atom_refs.len() as u8);
    for atom in &atom_refs {
        reply.extend_from_slice(&(atom.len() as u16).to_be_bytes());
        reply.extend_from_slice(atom.as_bytes());
    }
    reply.extend_from_slice(&(with_refs.len() as u32).to_be_bytes());
    reply.extend_from_slice(&with_refs);
    Ok(reply)
}

#[test]
fn otp_decodes_every_term_we_give_back() {
    let seed = env_or("ORACLE_SEED", DEFAULT_SEED);
    let count = env_or("ORACLE_TERMS", DEFAULT_TERMS);
    eprintln!("oracle: seed {seed}, {count} terms (ORACLE_SEED={seed} to reproduce)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle.escript");
    let mut child = Command::new("escript")
        .args([script, &seed.to_string(), &count.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("`escript` not found: install Erlang/OTP (scripts/setup does)");
    let mut to_oracle = child.stdin.take().unwrap();
    let mut from_oracle = child.stdout.take().unwrap();

    let mut seen = 0u64;
    let verdict = loop {
        let frame = read_frame(&mut from_oracle);
        // A batch is <<Len:32, Etf/binary>>*; the verdict is one ETF term.
        if frame.first() == Some(&131) {
            break etf::decode(&frame).expect("verdict decodes").into_owned();
        }
        let mut reply = Vec::new();
        let mut rest = frame.as_slice();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let bytes = &rest[4..4 + len];
            rest = &rest[4 + len..];
            match answer(bytes) {
                Ok(ok) => reply.extend_from_slice(&ok),
                Err(message) => {
                    reply.push(1);
                    reply.extend_from_slice(&(message.len() as u32).to_be_bytes());
                    reply.extend_from_slice(message.as_bytes());
                }
            }
            seen += 1;
        }
        write_frame(&mut to_oracle, &reply);
    };
    write_frame(&mut to_oracle, b"bye");
    let _ = child.wait();

    let expected = Term::Tuple(vec![Term::atom("ok"), Term::Int(count as i64)]);
    assert!(
        verdict == expected,
        "oracle failed (seed {seed}, ORACLE_SEED={seed} to reproduce): {}",
        json::to_string(&verdict).unwrap_or_else(|e| format!("<{e}>"))
    );
    assert_eq!(seen, count);
}
