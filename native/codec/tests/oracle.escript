#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noinput
%%
%% OTP as the oracle for the term codec. Generates random terms from a fixed
%% seed and sends each, encoded by term_to_binary/2 with random options, to
%% the Rust side over stdin/stdout ({packet, 4} frames, in batches). For every
%% term the Rust side answers with its own re-encoding of the term after a trip
%% through JSON, and with an encoding that uses atom cache references; this
%% script checks binary_to_term(Answer) =:= Original and
%% erts_debug:dist_ext_to_term(AtomCache, AnswerWithRefs) =:= Original.
%%
%% Usage: escript oracle.escript Seed Count
-mode(compile).

main([SeedArg, CountArg]) ->
    Seed = list_to_integer(SeedArg),
    Count = list_to_integer(CountArg),
    rand:seed(exsss, Seed),
    put(atoms, list_to_tuple(atom_pool())),
    put(pids, list_to_tuple(pid_pool())),
    Port = open_port({fd, 0, 1}, [binary, {packet, 4}]),
    Result = run(Port, Seed, Count, 0),
    port_command(Port, term_to_binary(Result)),
    receive {Port, {data, <<"bye">>}} -> ok after 10000 -> ok end,
    halt(0).

-define(BATCH, 500).

run(_Port, _Seed, Count, Done) when Done >= Count ->
    {ok, Done};
run(Port, Seed, Count, Done) ->
    N = min(?BATCH, Count - Done),
    Terms = [term(pick([1, 3, 6, 30])) || _ <- lists:seq(1, N)],
    Encoded = [term_to_binary(T, options()) || T <- Terms],
    port_command(Port, << <<(byte_size(B)):32, B/binary>> || B <- Encoded >>),
    receive
        {Port, {data, Reply}} ->
            case check(Terms, Encoded, Reply, Done) of
                ok -> run(Port, Seed, Count, Done + N);
                {error, _} = Error -> Error
            end
    after 120000 ->
        {error, {timeout, Done}}
    end.

check([], [], <<>>, _Index) ->
    ok;
check([T | Ts], [B | Bs], Reply, Index) ->
    case Reply of
        <<0, Len:32, Ours:Len/binary, NAtoms:8, Rest0/binary>> ->
            {Atoms, <<RLen:32, WithRefs:RLen/binary, Rest/binary>>} = atoms(NAtoms, Rest0, []),
            Back = (catch binary_to_term(Ours)),
            BackRefs = (catch erts_debug:dist_ext_to_term(list_to_tuple(Atoms), <<131, WithRefs/binary>>)),
            if
                Back =/= T -> {error, {mismatch, Index, T, B, Ours, Back}};
                BackRefs =/= T -> {error, {atom_cache_mismatch, Index, T, WithRefs, BackRefs}};
                true -> check(Ts, Bs, Rest, Index + 1)
            end;
        <<1, Len:32, Message:Len/binary, Rest/binary>> ->
            _ = Rest,
            {error, {rust_error, Index, T, B, Message}};
        _ ->
            {error, {bad_reply, Index}}
    end.

atoms(0, Rest, Acc) ->
    {lists:reverse(Acc), Rest};
atoms(N, <<Len:16, Name:Len/binary, Rest/binary>>, Acc) ->
    atoms(N - 1, Rest, [binary_to_atom(Name, utf8) | Acc]).

options() ->
    pick([[], [{minor_version, 0}], [{minor_version, 1}], [{minor_version, 2}],
          [compressed], [{compressed, 9}, {minor_version, 2}], [{compressed, 1}, {minor_version, 0}]]).

pick(List) -> lists:nth(rand:uniform(length(List)), List).

%% ---------------------------------------------------------------- pools

atom_pool() ->
    Fixed = ['', ok, error, true, false, nil, null, undefined, 'ünï', 'Ärger', 'ÿ',
             '日本語', 'emoji😀', '$atom', 'with space', 'a@b', 'node@127.0.0.1', list_to_atom([$a, 0, $b]),
             list_to_atom(lists:duplicate(255, $x)), list_to_atom(lists:duplicate(255, 16#e9)),
             list_to_atom(lists:duplicate(255, 16#1F600))],
    Random = [list_to_atom(random_chars(rand:uniform(20))) || _ <- lists:seq(1, 300)],
    Fixed ++ Random.

random_chars(N) ->
    [case rand:uniform(4) of
         1 -> $a + rand:uniform(26) - 1;
         2 -> 16#a0 + rand:uniform(95);          % Latin-1 supplement
         3 -> 16#100 + rand:uniform(16#2000);    % beyond Latin-1
         4 -> pick([$_, $@, $., $-, $\s, 16#1F600, 16#10FFFF - rand:uniform(10)])
     end || _ <- lists:seq(1, N)].

pid_pool() ->
    [self(), spawn(fun() -> ok end)] ++
        [external_pid(random_node(), rand:uniform(1 bsl 32) - 1, rand:uniform(1 bsl 32) - 1,
                      rand:uniform(1 bsl 32) - 1) || _ <- lists:seq(1, 20)].

random_node() ->
    list_to_atom(pick(["peer", "ünï", "日本", "n"]) ++ "@" ++ pick(["host", "127.0.0.1", "ex.ample"])).

atom_ext(A) ->
    B = atom_to_binary(A, utf8),
    <<119, (byte_size(B)):8, B/binary>>.

external_pid(Node, Id, Serial, Creation) ->
    binary_to_term(<<131, 88, (atom_ext(Node))/binary, Id:32, Serial:32, Creation:32>>).

external_port(Node, Id, Creation) when Id < (1 bsl 32) ->
    binary_to_term(<<131, 89, (atom_ext(Node))/binary, Id:32, Creation:32>>);
external_port(Node, Id, Creation) ->
    binary_to_term(<<131, 120, (atom_ext(Node))/binary, Id:64, Creation:32>>).

external_ref(Node, Creation, Words) ->
    binary_to_term(<<131, 90, (length(Words)):16, (atom_ext(Node))/binary, Creation:32,
                     << <<W:32>> || W <- Words >>/binary>>).

%% ---------------------------------------------------------------- terms

%% term(Budget): a random term whose size is roughly bounded by Budget.
term(Budget) when Budget =< 1 ->
    scalar();
term(Budget) ->
    case rand:uniform(14) of
        1 -> [term(Budget div 2) || _ <- lists:seq(1, rand:uniform(4) - 1)];
        2 -> list_to_tuple([term(Budget div 2) || _ <- lists:seq(1, rand:uniform(4) - 1)]);
        3 -> maps:from_list([{key(), term(Budget div 2)} || _ <- lists:seq(1, rand:uniform(4) - 1)]);
        4 -> maps:from_list([{unicode:characters_to_binary(random_text()), term(Budget div 2)}
                             || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        5 -> improper(Budget);
        6 -> deep(rand:uniform(150), scalar());
        7 -> big_container();
        8 -> closure(Budget);
        9 -> #{pick([<<"$atom">>, <<"$tail">>, <<"$map">>]) => term(Budget div 2)};
        10 -> [term(Budget div 2), term(Budget div 2)];
        _ -> scalar()
    end.

key() ->
    case rand:uniform(6) of
        1 -> atom();
        2 -> integer();
        3 -> {atom(), integer()};
        4 -> unicode:characters_to_binary(random_text());
        5 -> random_bytes();
        6 -> float()
    end.

improper(Budget) ->
    Tail = pick([atom(), integer(), random_bytes(), {}, #{}, float()]),
    lists:foldl(fun(X, Acc) -> [X | Acc] end, Tail,
                [term(Budget div 2) || _ <- lists:seq(1, rand:uniform(3))]).

deep(0, Leaf) -> Leaf;
deep(N, Leaf) ->
    Inner = deep(N - 1, Leaf),
    case rand:uniform(4) of
        1 -> [Inner];
        2 -> {Inner};
        3 -> #{a => Inner};
        4 -> [1 | Inner]
    end.

big_container() ->
    case rand:uniform(4) of
        1 -> list_to_tuple(lists:seq(1, 256 + rand:uniform(300)));
        2 -> maps:from_list([{I, scalar()} || I <- lists:seq(1, 33 + rand:uniform(60))]);
        3 -> [rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(400))];   % a charlist
        4 -> case rand:uniform(50) of
                 1 -> lists:duplicate(65536, 7);                    % too long for STRING_EXT
                 _ -> lists:seq(250, 300)
             end
    end.

closure(Budget) ->
    X = term(Budget div 2),
    Y = scalar(),
    pick([fun() -> X end, fun(A) -> {A, X, Y} end, fun lists:map/2, fun erlang:abs/1, fun ?MODULE:main/1]).

scalar() ->
    case rand:uniform(12) of
        1 -> atom();
        2 -> integer();
        3 -> integer();
        4 -> float();
        5 -> unicode:characters_to_binary(random_text());
        6 -> random_bytes();
        7 -> bitstring();
        8 -> pid();
        9 -> port();
        10 -> ref();
        11 -> pick([[], {}, #{}, <<>>, "", "charlist", [0], [255, 256]]);
        12 -> fun erlang:node/0
    end.

atom() ->
    Atoms = get(atoms),
    element(rand:uniform(tuple_size(Atoms)), Atoms).

integer() ->
    case rand:uniform(8) of
        1 -> rand:uniform(256) - 1;
        2 -> rand:uniform(1 bsl 31) - (1 bsl 30);
        3 -> pick([-1, 0, 255, 256, -(1 bsl 31), (1 bsl 31) - 1, 1 bsl 31, -(1 bsl 31) - 1,
                   (1 bsl 63) - 1, -(1 bsl 63), 1 bsl 63, -(1 bsl 63) - 1, 1 bsl 64, (1 bsl 53) + 1]);
        4 -> rand:uniform(1 bsl 64) - (1 bsl 63);
        5 -> (rand:uniform(1 bsl 200)) * pick([1, -1]);
        6 -> (rand:uniform(1 bsl 2100)) * pick([1, -1]);    % LARGE_BIG_EXT
        7 -> -rand:uniform(1000);
        8 -> rand:uniform(1 bsl 62)
    end.

float() ->
    case rand:uniform(6) of
        1 -> rand:uniform() * math:pow(10, rand:uniform(40) - 20);
        2 -> float(rand:uniform(1000) - 500);                  % integral float
        3 -> pick([0.0, 1.0e300, -1.0e300, 5.0e-324, 2.2250738585072014e-308,
                   1.7976931348623157e308, 0.1, 1/3, 123456789012345680.0, 1.0e21, 1.0e-7]);
        4 -> rand:normal() * 1.0e10;
        5 -> <<F:64/float>> = <<(rand:uniform(1 bsl 62)):64>>, F;
        6 -> -rand:uniform() * 1.0e-300
    end.

random_text() ->
    pick([[], "plain", "with \"quotes\" and \\ and \n\t", "ünïcödé", "日本語テキスト", "😀 emoji",
          random_chars(rand:uniform(30)), "$atom", "$binary"]).

random_bytes() ->
    case rand:uniform(3) of
        1 -> crypto_free_bytes(rand:uniform(40));
        2 -> <<0, "nul inside", 0>>;
        3 -> <<255, 254, "latin-1 not utf-8: ", 233>>
    end.

crypto_free_bytes(N) -> << <<(rand:uniform(256) - 1)>> || _ <- lists:seq(1, N) >>.

bitstring() ->
    Bits = rand:uniform(7),
    Bytes = crypto_free_bytes(rand:uniform(5) - 1),
    <<Bytes/binary, (rand:uniform(1 bsl Bits) - 1):Bits>>.

pid() ->
    Pids = get(pids),
    element(rand:uniform(tuple_size(Pids)), Pids).

port() ->
    case rand:uniform(3) of
        1 -> hd(erlang:ports());
        2 -> external_port(random_node(), rand:uniform(1 bsl 28) - 1, rand:uniform(1 bsl 32) - 1);
        3 -> external_port(random_node(), (1 bsl 32) + rand:uniform(1 bsl 40), rand:uniform(1 bsl 32) - 1)
    end.

ref() ->
    case rand:uniform(3) of
        1 -> make_ref();
        2 -> external_ref(random_node(), rand:uniform(1 bsl 32) - 1, [rand:uniform(1 bsl 32) - 1 || _ <- lists:seq(1, 3)]);
        3 -> external_ref(random_node(), rand:uniform(1 bsl 32) - 1,
                          [rand:uniform(1 bsl 32) - 1 || _ <- lists:seq(1, rand:uniform(5))])
    end.
