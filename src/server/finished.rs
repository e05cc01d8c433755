//! What workers send back to the loop: finished responses (sent, kept in the cache when they
//! may be, and used to answer the connections that waited for the same path), and the pieces
//! of streamed bodies, each asked for only once the connection has sent the previous one.

use super::conn::State;
use super::event_loop::EventLoop;
use super::pool::{Done, Outcome};

impl EventLoop {
    /// Handles everything workers have finished.
    pub(super) fn complete(&mut self) {
        let finished: Vec<Done> = self.pool.finished().collect();
        for Done { ticket, outcome } in finished {
            match outcome {
                Outcome::Response { response, cached } => {
                    if let Some(path) = &ticket.cache_key {
                        // What was made from a routes table since reloaded is not kept.
                        let kept = cached.filter(|_| ticket.generation == self.generation);
                        for (key, id) in self.cache.finish(path, kept.clone(), self.now) {
                            self.resume(key, id, kept.as_ref());
                        }
                    }
                    if let Some(stream) = ticket.stream {
                        self.h2_answered(&ticket, stream, response);
                        continue;
                    }
                    let Some(conn) = self.conns.get_mut(ticket.key) else {
                        continue;
                    };
                    if conn.id != ticket.conn_id || !matches!(conn.state, State::Busy { .. }) {
                        continue;
                    }
                    let State::Busy { req } = std::mem::replace(&mut conn.state, State::Sending)
                    else {
                        unreachable!("checked above")
                    };
                    self.respond(ticket.key, Some(&req), response, req.keep_alive);
                    self.drive(ticket.key);
                }
                Outcome::Piece { producer, piece } => {
                    let Some(conn) = self.conns.get_mut(ticket.key) else {
                        continue;
                    };
                    if conn.id != ticket.conn_id {
                        continue;
                    }
                    match piece {
                        Ok(piece) => {
                            conn.out.put_piece(producer, piece);
                            self.drive(ticket.key);
                        }
                        // The body cannot be finished (a file that shrank, a codec error):
                        // the connection is closed, so the client sees it incomplete.
                        Err(_) => self.close(ticket.key),
                    }
                }
            }
        }
    }

    /// Asks a worker for the next piece of the streamed body connection `key` is sending.
    pub(super) fn produce_piece(&mut self, key: usize) {
        let Some(producer) = self.conns[key].out.take_producer() else {
            return;
        };
        let ticket = self.ticket(key, None, None);
        self.pool.produce(ticket, producer);
    }
}
