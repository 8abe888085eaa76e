%% The gen_server the SQL tests talk to: it echoes, sleeps, crashes on
%% request, and keeps every message, cast and send it receives so that SQL
%% can check they arrived.
-module(regress_server).
-behaviour(gen_server).
-export([start/0, record/1]).
-export([echo_after/2, concurrent/1, reset_concurrency/0, max_concurrent/0,
         sleepers/0, slow_if/2, spam/1, nest/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

start() ->
    {ok, _} = gen_server:start({local, ?MODULE}, ?MODULE, [], []),
    ok.

%% For calls in flight: a reply after a while; how many ran at once (an
%% ETS table of the server's keeps the count); how many processes sleep in
%% timer:sleep/1 (calls still running); a node that is slow; messages to
%% the caller that belong to no call.
echo_after(Ms, Value) ->
    timer:sleep(Ms),
    Value.

concurrent(Ms) ->
    Now = ets:update_counter(regress_concurrency, now, 1),
    raise_max(Now),
    timer:sleep(Ms),
    ets:update_counter(regress_concurrency, now, -1),
    ok.

%% max := max(max, Now), atomically (compare and swap).
raise_max(Now) ->
    Max = ets:lookup_element(regress_concurrency, max, 2),
    case Now > Max of
        true ->
            Swap = [{{max, Max}, [], [{const, {max, Now}}]}],
            case ets:select_replace(regress_concurrency, Swap) of
                1 -> ok;
                0 -> raise_max(Now)
            end;
        false ->
            ok
    end.

reset_concurrency() ->
    ets:insert(regress_concurrency, [{now, 0}, {max, 0}]),
    ok.

max_concurrent() ->
    ets:lookup_element(regress_concurrency, max, 2).

sleepers() ->
    length([P || P <- processes(),
                 process_info(P, current_function) =:= {current_function, {timer, sleep, 1}}]).

slow_if(Prefix, Ms) ->
    case lists:prefix(binary_to_list(Prefix), atom_to_list(node())) of
        true -> timer:sleep(Ms);
        false -> ok
    end,
    node().

%% A list nested N levels deep.
nest(0) -> [];
nest(N) -> [nest(N - 1)].

spam(N) ->
    {parent, Parent} = process_info(self(), parent),
    [Parent ! {stray, I} || I <- lists:seq(1, N)],
    N.

%% Called by erlang_cast: proves the cast really ran.
record(Term) ->
    gen_server:cast(?MODULE, {record, Term}).

init([]) ->
    ets:new(regress_concurrency, [named_table, public]),
    reset_concurrency(),
    {ok, []}.

handle_call({echo, Term}, _From, Seen) -> {reply, Term, Seen};
handle_call({sleep, Ms}, _From, Seen) -> timer:sleep(Ms), {reply, slept, Seen};
handle_call(seen, _From, Seen) -> {reply, lists:reverse(Seen), Seen};
handle_call(crash, _From, _Seen) -> exit(asked_to_crash).

handle_cast({record, Term}, Seen) -> {noreply, [{cast, Term} | Seen]}.

handle_info(Message, Seen) -> {noreply, [{info, Message} | Seen]}.
