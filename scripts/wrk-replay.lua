-- wrk script for scripts/bench.sh: replays pre-sealed envelopes (one JSON
-- object a line, from `sealchain bench --save-envelopes`) as
-- POST /v1/messages, each envelope once. The threads share the file:
-- thread k sends lines k, k + threads, k + 2 * threads, ... and stops when
-- its lines are used up, so nothing is sent twice (a resend would be
-- answered 200 from the stored copy and say nothing about ingest).
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
    answered = 0
    headers = { ["Content-Type"] = "application/json" }
end

function request()
    sent = sent + 1
    -- Past the end (requests already in flight when the last line went
    -- out) wrk still wants a request: send the last line again; its
    -- answer is a 200 resend, not an accepted message.
    local body = bodies[math.min(sent, #bodies)]
    return wrk.format("POST", "/v1/messages", headers, body)
end

function response(status, headers, body)
    answered = answered + 1
    if answered >= #bodies then
        wrk.thread:stop()
    end
end
