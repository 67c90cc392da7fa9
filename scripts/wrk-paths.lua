-- wrk script for scripts/growth.sh: GET requests for paths read from a
-- file (one path a line), in random order, so that every request reads
-- another block, message or proof and the cache cannot serve one row over
-- and over.
--
-- Environment: SEALCHAIN_PATHS (the file).

function init(args)
    paths = {}
    for line in io.lines(os.getenv("SEALCHAIN_PATHS")) do
        paths[#paths + 1] = line
    end
    math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0))
end

function request()
    return wrk.format("GET", paths[math.random(#paths)])
end
