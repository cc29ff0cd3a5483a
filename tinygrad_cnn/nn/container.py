"""Modules that hold modules: Sequential, ModuleList, ModuleDict."""
from .module import Module


def _check_module(owner, value):
    if not isinstance(value, Module):
        raise TypeError(f"{owner}: expected a Module, got {type(value).__name__}")
    return value


class Sequential(Module):
    """Calls its layers in order. Sequential(a, b, c), or Sequential(dict) to name them."""

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], dict):
            self._names, layers = [str(k) for k in layers[0]], list(layers[0].values())
        else:
            self._names = None
        self.layers = [_check_module("Sequential", m) for m in layers]

    def _members(self):
        names = self._names or range(len(self.layers))
        yield from ((str(name), layer) for name, layer in zip(names, self.layers))
        yield from super()._members(skip=("layers", "_names"))

    def __getattr__(self, name):  # only for names missing otherwise: Sequential(dict)'s names
        names = self.__dict__.get("_names")
        if names and name in names:
            return self.layers[names.index(name)]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(*self.layers[i])
        return self.layers[i]

    def __setitem__(self, i, module):
        self.layers[i] = _check_module("Sequential", module)

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def append(self, module):
        if self._names is not None:
            self._names.append(str(len(self.layers)))
        self.layers.append(_check_module("Sequential.append", module))
        return self

    def forward(self, x):
        for layer in self.layers:  # layer(x), minus one call per layer when it has no hooks
            x = layer.forward(x) if layer._hooks is None else layer(x)
        return x


class ModuleList(Module):
    """A list of modules, named "0", "1", ... (a plain list attribute works too)."""

    def __init__(self, modules=()):
        self._list = [_check_module("ModuleList", m) for m in modules]

    def _members(self):
        yield from ((str(i), m) for i, m in enumerate(self._list))
        yield from super()._members(skip=("_list",))

    def __getitem__(self, i):
        return ModuleList(self._list[i]) if isinstance(i, slice) else self._list[i]

    def __setitem__(self, i, module):
        self._list[i] = _check_module("ModuleList", module)

    def __delitem__(self, i):
        del self._list[i]

    def __len__(self):
        return len(self._list)

    def __iter__(self):
        return iter(self._list)

    def append(self, module):
        self._list.append(_check_module("ModuleList.append", module))
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        self._list.insert(index, _check_module("ModuleList.insert", module))


class ModuleDict(Module):
    """A dict of modules with string keys, named by their keys (a plain dict attribute works too)."""

    def __init__(self, modules=None):
        self._dict = {}
        self.update(modules or {})

    def _members(self):
        yield from self._dict.items()
        yield from super()._members(skip=("_dict",))

    def __getitem__(self, key):
        return self._dict[key]

    def __setitem__(self, key, module):
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: keys must be non-empty strings without '.', got {key!r}")
        self._dict[key] = _check_module("ModuleDict", module)

    def __delitem__(self, key):
        del self._dict[key]

    def __len__(self):
        return len(self._dict)

    def __iter__(self):
        return iter(self._dict)

    def __contains__(self, key):
        return key in self._dict

    def keys(self):
        return self._dict.keys()

    def values(self):
        return self._dict.values()

    def items(self):
        return self._dict.items()

    def pop(self, key):
        return self._dict.pop(key)

    def update(self, modules):
        for key, module in (modules.items() if hasattr(modules, "items") else modules):
            self[key] = module
