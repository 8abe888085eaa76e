defmodule ErlangCnode.Inbox.Protocol do
  @moduledoc """
  The wire protocol of delivery at commit (docs/delivery.md), for any
  process that wants to receive messages from `erlang_send_on_commit`
  exactly once; `ErlangCnode.Inbox` is built on it.

  PostgreSQL's worker sends `{:"$erlang_cnode_delivery", id, message, ack_to}`
  to the registered name, and sends it again (same `id`) until the receiver
  sends `{:"$erlang_cnode_ack", id}` to `ack_to`. `id` is a positive integer,
  unique in its database forever.

      iex> ErlangCnode.Inbox.Protocol.delivery({:"$erlang_cnode_delivery", 7, %{"n" => 1}, self()})
      {:ok, 7, %{"n" => 1}, self()}
      iex> ErlangCnode.Inbox.Protocol.delivery(:hello)
      :error
      iex> ErlangCnode.Inbox.Protocol.ack(7)
      {:"$erlang_cnode_ack", 7}
  """

  @delivery :"$erlang_cnode_delivery"
  @ack :"$erlang_cnode_ack"

  @doc "The parts of a delivery envelope, or `:error` for any other message."
  def delivery({@delivery, id, message, ack_to}) when is_integer(id) and is_pid(ack_to),
    do: {:ok, id, message, ack_to}

  def delivery(_), do: :error

  @doc "The acknowledgement of message `id`."
  def ack(id) when is_integer(id), do: {@ack, id}
end
