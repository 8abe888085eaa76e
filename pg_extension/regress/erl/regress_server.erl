%% The gen_server the SQL tests talk to: it echoes, sleeps, crashes on
%% request, and keeps every message, cast and send it receives so that SQL
%% can check they arrived.
-module(regress_server).
-behaviour(gen_server).
-export([start/0, record/1]).
-export([echo_after/2, concurrent/1, reset_concurrency/0, max_concurrent/0,
         sleepers/0, slow_if/2, spam/1, nest/1]).
-export([receiver/2, received/1, tally/2, tallied/1, fail_unless/2]).
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

%% Delivery at commit. receiver(Name, Ack) registers a process that keeps
%% every message it is sent, in order: deliveries by id (acknowledged when
%% Ack is true), anything else as it came; received(Name) lists them.
receiver(Name, Ack) ->
    Pid = spawn(fun() -> receive_loop(Ack, []) end),
    true = register(binary_to_atom(Name), Pid),
    ok.

receive_loop(Ack, Seen) ->
    receive
        {'$erlang_cnode_delivery', Id, Message, AckTo} ->
            Ack andalso (AckTo ! {'$erlang_cnode_ack', Id}),
            receive_loop(Ack, [#{id => Id, message => Message} | Seen]);
        {seen, From} ->
            From ! {seen, lists:reverse(Seen)},
            receive_loop(Ack, Seen);
        Other ->
            receive_loop(Ack, [#{bare => Other} | Seen])
    end.

received(Name) ->
    binary_to_atom(Name) ! {seen, self()},
    receive {seen, Seen} -> Seen after 5000 -> timeout end.

%% A cast's target: counts its calls under a key (an ETS table of the
%% server's), in order.
tally(Key, Value) ->
    ets:insert(regress_concurrency, {{tally, erlang:unique_integer([monotonic])}, Key, Value}),
    ok.

tallied(Key) ->
    [V || {_, V} <- lists:sort([{N, V} || {{tally, N}, K, V} <- ets:tab2list(regress_concurrency), K =:= Key])].

%% Raises until the file Path exists (a cast that fails, then works).
fail_unless(Path, Value) ->
    case filelib:is_file(Path) of
        true -> tally(Path, Value);
        false -> error({not_yet, Value})
    end.

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
