//! A fake Erlang node for failures real nodes do not produce: it registers
//! with EPMD, completes the distribution handshake (protocol 6) with the
//! right cookie, and then answers every request with a frame that is not a
//! term, so the caller sees a protocol violation.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{short_host, unique};

/// EPMD's `ALIVE2_REQ` and its replies.
const ALIVE2_REQ: u8 = 120;
const ALIVE2_X_RESP: u8 = 118;
const ALIVE2_RESP: u8 = 121;

/// A fake node registered with EPMD until dropped.
#[derive(Debug)]
pub struct FakeNode {
    /// Its full name, `name@host`.
    pub name: String,
    /// The cookie it accepts.
    pub cookie: String,
    stop: Arc<AtomicBool>,
    port: u16,
    epmd: TcpStream,
    thread: Option<JoinHandle<()>>,
}

impl FakeNode {
    /// Starts a fake node that sends a malformed frame in answer to any
    /// message. Panics if EPMD (started by any `erl`) is not running.
    pub fn malformed_replies() -> FakeNode {
        let alive = unique("fake");
        let cookie = unique("cookie");
        let listener = TcpListener::bind("0.0.0.0:0").expect("bind a port");
        let port = listener.local_addr().unwrap().port();
        let epmd = register(&alive, port);
        let stop = Arc::new(AtomicBool::new(false));
        let name = format!("{alive}@{}", short_host());
        let thread = {
            let (stop, name, cookie) = (stop.clone(), name.clone(), cookie.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let (name, cookie) = (name.clone(), cookie.clone());
                        std::thread::spawn(move || serve(stream, &name, &cookie));
                    }
                }
            })
        };
        FakeNode {
            name,
            cookie,
            stop,
            port,
            epmd,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let _ = self.epmd.shutdown(Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Registers `alive` at `port` with the local EPMD; the registration lasts
/// as long as the returned connection.
fn register(alive: &str, port: u16) -> TcpStream {
    let mut epmd =
        TcpStream::connect(("127.0.0.1", 4369)).expect("EPMD is running (start an erl node first)");
    let mut body = vec![ALIVE2_REQ];
    body.extend_from_slice(&port.to_be_bytes());
    body.extend_from_slice(&[77, 0]); // a normal node, TCP
    body.extend_from_slice(&6u16.to_be_bytes()); // highest version
    body.extend_from_slice(&6u16.to_be_bytes()); // lowest version
    body.extend_from_slice(&(alive.len() as u16).to_be_bytes());
    body.extend_from_slice(alive.as_bytes());
    body.extend_from_slice(&0u16.to_be_bytes()); // no extra
    let mut request = (body.len() as u16).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    epmd.write_all(&request).unwrap();
    let mut head = [0u8; 2];
    epmd.read_exact(&mut head).unwrap();
    assert!(
        matches!(head, [ALIVE2_X_RESP | ALIVE2_RESP, 0]),
        "EPMD refused to register {alive}: {head:?}"
    );
    let rest = if head[0] == ALIVE2_X_RESP { 4 } else { 2 };
    epmd.read_exact(&mut vec![0u8; rest]).unwrap();
    epmd
}

fn read_handshake(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body)?;
    Ok(body)
}

fn write_handshake(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut frame = (body.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}

/// The server side of the handshake, then a malformed answer to every
/// message (ticks are left unanswered).
fn serve(mut stream: TcpStream, name: &str, cookie: &str) {
    let _ = (|| -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        // send_name: 'N', flags (8), creation (4), name.
        let send_name = read_handshake(&mut stream)?;
        let flags = &send_name[1..9];
        write_handshake(&mut stream, b"sok")?;
        // Our challenge, offering back the client's own flags.
        let mut challenge = vec![b'N'];
        challenge.extend_from_slice(flags);
        challenge.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        challenge.extend_from_slice(&1u32.to_be_bytes()); // creation
        challenge.extend_from_slice(&(name.len() as u16).to_be_bytes());
        challenge.extend_from_slice(name.as_bytes());
        write_handshake(&mut stream, &challenge)?;
        // challenge_reply: 'r', their challenge (4), digest (16).
        let reply = read_handshake(&mut stream)?;
        let theirs = u32::from_be_bytes(reply[1..5].try_into().unwrap());
        let mut ack = vec![b'a'];
        ack.extend_from_slice(&md5::compute(format!("{cookie}{theirs}")).0);
        write_handshake(&mut stream, &ack)?;
        loop {
            let mut len = [0u8; 4];
            stream.read_exact(&mut len)?;
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            stream.read_exact(&mut body)?;
            if !body.is_empty() {
                // Pass-through type, then bytes that are no term.
                stream.write_all(&[0, 0, 0, 3, 112, 131, 255])?;
            }
        }
    })();
}
