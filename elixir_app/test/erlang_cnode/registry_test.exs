defmodule ErlangCnode.RegistryTest do
  use ExUnit.Case
  alias ErlangCnode.Registry
  doctest ErlangCnode.Registry

  test "services are listed with their signatures, as SQL shows them" do
    Registry.register(ErlangCnode.Demo)
    rows = Registry.sql_services()
    add = Enum.find(rows, &(&1["service"] == "demo" and &1["function"] == "add"))

    assert add == %{
             "service" => "demo",
             "function" => "add",
             "arguments" => [
               %{"name" => "a", "type" => "integer"},
               %{"name" => "b", "type" => "integer"}
             ],
             "returns" => "integer"
           }
  end

  test "only service modules can be registered" do
    assert_raise ArgumentError, fn -> Registry.register(Enum) end
  end

  defmodule Temporary do
    use ErlangCnode.Service, name: "temporary"

    defcall ping() :: string do
      "pong"
    end
  end

  test "unregistering removes the service" do
    Registry.register(Temporary)
    assert {:ok, Temporary} = Registry.lookup("temporary")
    Registry.unregister("temporary")
    assert Registry.lookup("temporary") == :error
  end
end
