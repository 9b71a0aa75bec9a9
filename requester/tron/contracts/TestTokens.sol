// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Test tokens for the offline TRON node and the channel contract's tests
/// @notice TRC-20 (ERC-20 shaped) tokens with 18 decimals that only their deployer
/// can mint. `AtlasTestToken` is a plain, well-behaved token (the node's test BTT).
/// The variants behave like tokens that exist on TRON and Ethereum, so the tests
/// can show what `AtlasChannels` accepts and refuses:
/// - `NoReturnToken`: transfer/transferFrom return nothing (USDT-on-Ethereum style);
/// - `FalseReturnToken`: a failing transfer/transferFrom returns false, no revert;
/// - `FeeOnTransferToken`: burns 1% of every transfer, the receiver gets less;
/// - `ReentrantToken`: calls back into an armed target during a transfer and
///   records whether that call succeeded.
/// None of them is meant for real money.

/// @dev Balances, allowances, minting and the moves the variants share.
abstract contract TestTokenBase {
    uint8 public constant decimals = 18;
    string public name;
    string public symbol;
    uint256 public totalSupply;
    address public immutable minter;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error NotMinter(address caller);
    error InsufficientBalance(uint256 balance, uint256 needed);
    error InsufficientAllowance(uint256 allowance, uint256 needed);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
        minter = msg.sender;
    }

    /// @notice Create `amount` new tokens for `to` (the node funds test accounts this way).
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @dev Move `amount` from `from` to `to`, burning `burned` of it on the way; revert on failure.
    function _move(address from, address to, uint256 amount, uint256 burned) internal {
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(balance, amount);
        unchecked {
            balanceOf[from] = balance - amount;
        }
        balanceOf[to] += amount - burned;
        emit Transfer(from, to, amount - burned);
        if (burned != 0) {
            totalSupply -= burned;
            emit Transfer(from, address(0), burned);
        }
    }

    /// @dev Spend `amount` of `from`'s allowance to the caller (the maximum is unlimited); revert if short.
    function _spend(address from, uint256 amount) internal {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed == type(uint256).max) return;
        if (allowed < amount) revert InsufficientAllowance(allowed, amount);
        unchecked {
            allowance[from][msg.sender] = allowed - amount;
        }
    }

    /// @dev True if `from` can send `amount` (and, for transferFrom, the caller may spend it).
    function _can(address from, uint256 amount, bool spending) internal view returns (bool) {
        return balanceOf[from] >= amount && (!spending || allowance[from][msg.sender] >= amount);
    }
}

/// @notice The local test BTT: reverts on failure and returns true on success.
contract AtlasTestToken is TestTokenBase {
    constructor() TestTokenBase("BitTorrent (Atlas test)", "BTT") {}

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount, 0);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _spend(from, amount);
        _move(from, to, amount, 0);
        return true;
    }
}

/// @notice transfer and transferFrom return no data at all; they revert on failure.
contract NoReturnToken is TestTokenBase {
    constructor() TestTokenBase("No-return token (Atlas test)", "NRT") {}

    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount, 0);
    }

    function transferFrom(address from, address to, uint256 amount) external {
        _spend(from, amount);
        _move(from, to, amount, 0);
    }
}

/// @notice A transfer the balance or allowance cannot cover returns false and changes nothing.
contract FalseReturnToken is TestTokenBase {
    constructor() TestTokenBase("False-return token (Atlas test)", "FRT") {}

    function transfer(address to, uint256 amount) external returns (bool) {
        if (!_can(msg.sender, amount, false)) return false;
        _move(msg.sender, to, amount, 0);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (!_can(from, amount, true)) return false;
        _spend(from, amount);
        _move(from, to, amount, 0);
        return true;
    }
}

/// @notice Burns 1% (rounded down) of every transfer: the receiver gets `amount - amount / 100`.
contract FeeOnTransferToken is TestTokenBase {
    constructor() TestTokenBase("Fee-on-transfer token (Atlas test)", "FOT") {}

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount, amount / 100);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _spend(from, amount);
        _move(from, to, amount, amount / 100);
        return true;
    }
}

/// @notice A plain token that, once armed, calls `target` with `data` during the next
/// transfer or transferFrom (after moving the balance), and records the outcome.
/// The call's failure does not fail the transfer: the test reads `lastCallOk` and
/// `lastCallReturn` to see how the target answered.
contract ReentrantToken is TestTokenBase {
    address public target;
    bytes public data;
    bool public lastCallOk;
    bytes public lastCallReturn;
    uint256 public callbacks;

    event Callback(address indexed target, bool ok, bytes returned);

    constructor() TestTokenBase("Reentrant token (Atlas test)", "RET") {}

    /// @notice Call `target_` with `data_` during the next transfer (one shot; deployer only).
    function arm(address target_, bytes calldata data_) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        target = target_;
        data = data_;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount, 0);
        _callback();
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _spend(from, amount);
        _move(from, to, amount, 0);
        _callback();
        return true;
    }

    function _callback() private {
        address to = target;
        if (to == address(0)) return;
        target = address(0);
        (bool ok, bytes memory returned) = to.call(data);
        lastCallOk = ok;
        lastCallReturn = returned;
        callbacks += 1;
        emit Callback(to, ok, returned);
    }
}
