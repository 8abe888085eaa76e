%% The gen_server the SQL tests talk to: it echoes, sleeps, crashes on
%% request, and keeps every message, cast and send it receives so that SQL
%% can check they arrived.
-module(regress_server).
-behaviour(gen_server).
-export([start/0, record/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

start() ->
    {ok, _} = gen_server:start({local, ?MODULE}, ?MODULE, [], []),
    ok.

%% Called by erlang_cast: proves the cast really ran.
record(Term) ->
    gen_server:cast(?MODULE, {record, Term}).

init([]) -> {ok, []}.

handle_call({echo, Term}, _From, Seen) -> {reply, Term, Seen};
handle_call({sleep, Ms}, _From, Seen) -> timer:sleep(Ms), {reply, slept, Seen};
handle_call(seen, _From, Seen) -> {reply, lists:reverse(Seen), Seen};
handle_call(crash, _From, _Seen) -> exit(asked_to_crash).

handle_cast({record, Term}, Seen) -> {noreply, [{cast, Term} | Seen]}.

handle_info(Message, Seen) -> {noreply, [{info, Message} | Seen]}.
