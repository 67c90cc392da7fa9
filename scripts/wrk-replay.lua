-- wrk script for scripts/bench.sh: replays pre-sealed envelopes (one JSON
-- object a line, from `sealchain bench --save-envelopes`) as
-- POST /v1/messages, each envelope once. The threads share the file:
-- thread k sends lines k, k + threads, k + 2 * threads, ... and stops once
-- each of its lines was accepted (202). Requests wrk wants past the end
-- (on connections that are still open) repeat the last line; they are
-- answered 200 from the stored copy and are not counted as accepted.
--
-- Environment: SEALCHAIN_ENVELOPES (the file), SEALCHAIN_WRK_THREADS (the
-- -t given to wrk).

local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
end

function init(args)
    local file = os.getenv("SEALCHAIN_ENVELOPES")
    local threads = tonumber(os.getenv("SEALCHAIN_WRK_THREADS"))
    bodies = {}
    local i = 0
    for line in io.lines(file) do
        if i % threads == id then
            bodies[#bodies + 1] = line
        end
        i = i + 1
    end
    sent = 0
    accepted = 0
    -- wrk calls request() once on thread 0 before any connection, to count
    -- the requests it returns (script_verify_request), and sends nothing
    -- of it: that call must not use up a line.
    probed = id ~= 0
    headers = { ["Content-Type"] = "application/json" }
end

function request()
    if not probed then
        probed = true
        return wrk.format("POST", "/v1/messages", headers, bodies[1])
    end
    sent = sent + 1
    local body = bodies[math.min(sent, #bodies)]
    return wrk.format("POST", "/v1/messages", headers, body)
end

function response(status, headers, body)
    if status == 202 then
        accepted = accepted + 1
        if accepted >= #bodies then
            wrk.thread:stop()
        end
    end
end
