//! A Bulkhead task in Zig (ABI v1: a WASI preview 1 command), built with `zig build-exe
//! -target wasm32-wasi`. It reads the task document on stdin, takes the `sum` that an upstream
//! task reported (the Python `summarize` task in workflows/languages.yaml) and the task's
//! `threshold` parameter, and outputs whether the sum is above it. It logs one structured record
//! to stderr. With `"fail":"transient"` in its parameters it exits 75 (EX_TEMPFAIL): the host
//! records a transient failure and retries under the task's retry policy.
//!
//! It calls WASI directly (fd_read, fd_write) and scans the document for the two numbers it
//! needs: Zig's standard I/O and JSON interfaces change between releases; these calls do not.
const std = @import("std");
const wasi = std.os.wasi;

var doc_buf: [4 << 20]u8 = undefined;

fn write(fd: wasi.fd_t, bytes: []const u8) void {
    var rest = bytes;
    while (rest.len > 0) {
        const iov = [_]wasi.ciovec_t{.{ .base = rest.ptr, .len = rest.len }};
        var n: usize = 0;
        if (wasi.fd_write(fd, &iov, 1, &n) != .SUCCESS or n == 0) return;
        rest = rest[n..];
    }
}

/// The whole of stdin, or null when it does not fit the buffer.
fn readStdin() ?[]const u8 {
    var len: usize = 0;
    while (true) {
        if (len == doc_buf.len) return null;
        const iov = [_]wasi.iovec_t{.{ .base = doc_buf[len..].ptr, .len = doc_buf.len - len }};
        var n: usize = 0;
        if (wasi.fd_read(0, &iov, 1, &n) != .SUCCESS) return null;
        if (n == 0) return doc_buf[0..len];
        len += n;
    }
}

/// The number after the first `"key":` in `doc`, if there is one.
fn numberAfter(doc: []const u8, key: []const u8) ?f64 {
    const at = std.mem.indexOf(u8, doc, key) orelse return null;
    var i = at + key.len;
    while (i < doc.len and doc[i] == ' ') i += 1;
    const start = i;
    while (i < doc.len and (std.ascii.isDigit(doc[i]) or doc[i] == '.' or doc[i] == '-' or
        doc[i] == 'e' or doc[i] == 'E' or doc[i] == '+')) i += 1;
    return std.fmt.parseFloat(f64, doc[start..i]) catch null;
}

pub fn main() u8 {
    const doc = readStdin() orelse {
        write(2, "{\"level\":\"error\",\"msg\":\"cannot read the task document\"}\n");
        return 1;
    };
    if (std.mem.indexOf(u8, doc, "\"fail\":\"transient\"") != null) {
        write(2, "{\"level\":\"warn\",\"msg\":\"asked to fail; try again\"}\n");
        return 75;
    }
    const threshold = numberAfter(doc, "\"threshold\":") orelse {
        write(2, "{\"level\":\"error\",\"msg\":\"params.threshold (a number) is required\"}\n");
        return 1;
    };
    const inputs = std.mem.indexOf(u8, doc, "\"inputs\":") orelse doc.len;
    const sum = numberAfter(doc[inputs..], "\"sum\":") orelse {
        write(2, "{\"level\":\"error\",\"msg\":\"no upstream output has a `sum`\"}\n");
        return 1;
    };
    var out: [256]u8 = undefined;
    const line = std.fmt.bufPrint(&out, "{{\"language\":\"zig\",\"sum\":{d},\"threshold\":{d},\"above\":{}}}\n", .{ sum, threshold, sum > threshold }) catch return 1;
    write(1, line);
    write(2, "{\"level\":\"info\",\"msg\":\"compared\"}\n");
    return 0;
}
